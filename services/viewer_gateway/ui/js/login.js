// Connexion: password, then the authenticator code where the account needs one (R38).
import { request } from "./api.js";
import { h, clear, fields } from "./dom.js";

export function mount(main, ctx, { message, onSignedIn }) {
  const error = h("p", { class: "erreur", role: "alert" }, message || "");
  const totp = h("label", { hidden: true }, "Code de l'application d'authentification",
    h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6 }));
  const form = h("form", { class: "pile", "aria-label": "Connexion" },
    h("label", {}, "Identifiant", h("input", { name: "username", autocomplete: "username", required: true })),
    h("label", {}, "Mot de passe", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("label", {}, "Poste", h("input", { name: "post", value: localStorage.getItem("vigie.poste") || "CSU" })),
    totp, error,
    h("button", { type: "submit", class: "principal" }, "Se connecter"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = fields(form);
    error.textContent = "";
    localStorage.setItem("vigie.poste", v.post);
    try {
      const me = await request("POST", "/api/session", {
        username: v.username, password: v.password, post: v.post, totp: v.totp || null,
      });
      await onSignedIn(me);
    } catch (err) {
      if (err.body?.totp_required) {
        totp.hidden = false;
        totp.querySelector("input").required = true;
        totp.querySelector("input").focus();
      }
      let text = err.message;
      const wait = err.headers?.get("Retry-After");
      if (err.status === 429 && wait) text = `Trop de tentatives échouées : réessayez dans ${Math.ceil(wait / 60)} min.`;
      if (!(err.body?.totp_required && !v.totp)) error.textContent = text;
      else error.textContent = "Saisissez le code de votre application d'authentification.";
    }
  });
  clear(main, h("section", { class: "connexion" },
    h("h1", {}, "Vigie — connexion"),
    h("p", { class: "info" }, "Accès réservé aux agents désignés. Chaque connexion et chaque consultation sont journalisées."),
    form));
  form.querySelector("input").focus();
}
