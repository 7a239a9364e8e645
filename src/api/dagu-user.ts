// DaguUser: one person who logs in to a builtin-mode DaguAuth.
import { z } from "zod";
import {
  CEL_META_KEY,
  Role,
  SecretKeySelector,
  authRef,
  cel,
  objectName,
  resource,
  statusBase,
  timestamp,
  username,
} from "./common.ts";

/**
 * RE2- and JS-compatible, so zod and the apiserver agree (zod's own email pattern uses lookaheads,
 * which a CRD pattern cannot). `format: email` additionally makes the apiserver parse it.
 */
const EMAIL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

export const UserPassword = cel(
  z
    .object({
      secretRef: SecretKeySelector.optional().describe(
        "Secret key holding the password (at least 8 characters). Changing the Secret changes the password.",
      ),
      generate: z
        .object({
          secretName: objectName(
            "Name of the Secret (created and owned by the operator) the generated password is written into. Immutable.",
          ).meta({
            [CEL_META_KEY]: [
              {
                rule: "self == oldSelf",
                message: "spec.password.generate.secretName is immutable: a new name would mean a new password",
              },
            ],
          }),
        })
        .optional()
        .describe("Generate a random password and write it into a Secret of this name."),
    })
    .describe("Where the password comes from: exactly one of secretRef or generate."),
  [
    {
      rule: "has(self.secretRef) != has(self.generate)",
      message: "spec.password must set exactly one of secretRef or generate",
      check: (p) => (p.secretRef === undefined) !== (p.generate === undefined),
    },
  ],
);
export type UserPassword = z.infer<typeof UserPassword>;

export const DaguUserSpec = cel(
  z
  .object({
    authRef: authRef(),
    username: username(
      "Login name, unique within the DaguAuth. A letter or digit, then letters, digits, '.', '_', '@' " +
        "or '-'; at most 64 characters. Immutable.",
    ).meta({ [CEL_META_KEY]: [{ rule: "self == oldSelf", message: "spec.username is immutable" }] }),
    role: Role,
    email: z
      .string()
      .max(254)
      .regex(EMAIL)
      .optional()
      .meta({ description: "Email address, shown in Dagu's UI.", format: "email" }),
    password: UserPassword.optional().describe(
      "Where the password comes from: exactly one of secretRef or generate. Optional for a user who only " +
        "signs in through SSO (sso: true).",
    ),
    sso: z
      .boolean()
      .default(false)
      .describe(
        "May sign in through the DaguAuth's OpenID provider (spec.oidc), matched by a verified email equal to " +
          "spec.email. The role and disabled here win over role mapping, and over a user SSO created earlier " +
          "with that email. Also how a person gets in when spec.oidc.autoSignup is false.",
      ),
    disabled: z
      .boolean()
      .default(false)
      .describe("A disabled user cannot log in, and tokens already issued to them are refused at once."),
    allowPasswordChange: z
      .boolean()
      .default(true)
      .describe(
        "Whether the user may change their password in Dagu's UI. The newer of a change there and a " +
          "change of the password Secret wins.",
      ),
  })
  .describe("Desired state of a Dagu user."),
  [
    {
      rule: "has(self.password) || self.sso",
      message: "spec.password is required unless spec.sso is true",
      fieldPath: ".password",
      reason: "FieldValueRequired",
      check: (u) => u.password !== undefined || u.sso,
    },
    {
      rule: "!self.sso || has(self.email)",
      message: "spec.email is required when spec.sso is true (single sign-on matches the user by email)",
      fieldPath: ".email",
      reason: "FieldValueRequired",
      check: (u) => !u.sso || u.email !== undefined,
    },
  ],
);
export type DaguUserSpec = z.infer<typeof DaguUserSpec>;

export const DaguUserStatus = z
  .object({
    ...statusBase,
    userId: z.string().max(128).optional().describe("The user's id in Dagu and in login tokens (this resource's uid)."),
    passwordChangedAt: timestamp(
      "When the effective password last changed; login tokens issued before it are refused.",
    ).optional(),
    passwordSecretName: z
      .string()
      .max(253)
      .optional()
      .describe("The Secret holding the password (the referenced or the generated one)."),
  })
  .describe("Observed state of the DaguUser, written by the operator.");
export type DaguUserStatus = z.infer<typeof DaguUserStatus>;

export const DaguUser = resource("DaguUser", DaguUserSpec, DaguUserStatus).describe(
  "DaguUser is a person who logs in to Dagu with a username, a password and a role.",
);
export type DaguUser = z.infer<typeof DaguUser>;
