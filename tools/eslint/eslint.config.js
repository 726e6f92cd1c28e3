// The web UI's JavaScript (services/viewer_gateway/ui/js): plain ES modules run by the browser
// as they are, no build step. `make lint` runs it from the repository's root.
import js from "@eslint/js";
import globals from "globals";

export default [
  {
    files: ["services/viewer_gateway/ui/js/**/*.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      ...js.configs.recommended.rules,
      "no-unused-vars": ["error", { args: "none", caughtErrors: "none" }],
      "no-empty": ["error", { allowEmptyCatch: true }],
    },
  },
];
