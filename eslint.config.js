// ESLint (flat config) for the page's ES modules and their Node tests. Types are tsc's job (tsconfig.json);
// this catches the rest: unused names, unreachable code, accidental globals, loose equality.
import js from "@eslint/js";
import globals from "globals";

const STATIC = "apps/voice_agent/static";

export default [
  { ignores: ["node_modules/", "build/", ".venv/", "artifacts/"] },
  js.configs.recommended,
  {
    files: ["**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module" },
    rules: {
      eqeqeq: ["error", "always"],
      "no-var": "error",
      "prefer-const": "error",
      "no-implicit-globals": "error",
      "no-shadow": "error",
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  { files: [`${STATIC}/*.js`], ignores: [`${STATIC}/worklets.js`], languageOptions: { globals: globals.browser } },
  { files: [`${STATIC}/worklets.js`], languageOptions: { globals: globals.audioWorklet } },
  { files: ["tests/js/**/*.js", "eslint.config.js"], languageOptions: { globals: globals.node } },
];
