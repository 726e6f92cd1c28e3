// First sign-in of an account whose password its administrator chose (issue 34, R8): nothing
// opens until the agent sets a password of their own; the one given is asked again.
import { api } from "./api.js";
import { h, clear, fields } from "./dom.js";

export function mount(main, ctx, { onDone }) {
  const error = h("p", { class: "erreur", role: "alert" });
  const form = h("form", { class: "pile", "aria-label": "Votre mot de passe" },
    h("label", {}, "Mot de passe reçu", h("input", { name: "current", type: "password", autocomplete: "current-password", required: true })),
    h("label", {}, "Nouveau mot de passe (12 caractères au moins)", h("input", { name: "fresh", type: "password", autocomplete: "new-password", minlength: 12, required: true })),
    h("label", {}, "Nouveau mot de passe, encore", h("input", { name: "again", type: "password", autocomplete: "new-password", minlength: 12, required: true })),
    error,
    h("button", { type: "submit", class: "principal" }, "Enregistrer mon mot de passe"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = fields(form);
    error.textContent = "";
    if (v.fresh !== v.again) {
      error.textContent = "Les deux saisies du nouveau mot de passe diffèrent.";
      return;
    }
    try {
      await api.post("/api/session/password", { current_password: v.current, new_password: v.fresh });
      await onDone(await api.get("/api/session"));
    } catch (err) {
      error.textContent = err.message;
    }
  });
  clear(main, h("section", { class: "connexion" },
    h("h1", {}, "Choisissez votre mot de passe"),
    h("p", { class: "info" }, `Le mot de passe de ${ctx.me.username} a été choisi par l'administrateur qui a créé le compte : il ne sert qu'à cette première connexion. Choisissez-en un que vous seul connaissez.`),
    form));
  form.querySelector("input").focus();
}
