// The gateway answers in English (logs, API); people read French. Known reasons are translated,
// anything else is shown as the gateway said it rather than hidden.
export const HOLDERS = { municipal_police: "Police municipale", national_police: "Police nationale" };

export const ROLES = {
  operator: "Opérateur", supervisor: "Superviseur", national_police: "Police nationale",
  mask_admin: "Administrateur des masques", admin: "Administrateur", auditor: "Auditeur",
};

export const CATEGORIES = {
  intervention: "Intervention en cours", damage: "Dégradation constatée",
  judicial_requisition: "Réquisition judiciaire", verbalisation: "Vidéo-verbalisation",
  right_of_access: "Droit d'accès d'une personne filmée", other: "Autre motif",
};

export const MODES = { fill: "Opaque", pixelate: "Pixellisé", blur: "Flou" };

const RULES = [
  [/^wrong username or password/, () => "Identifiant ou mot de passe incorrect."],
  [/^too many failed logins/, () => "Trop de tentatives échouées : patientez avant de réessayer."],
  [/^your designation expired on (\S+?):/, (m) =>
    `Votre désignation a expiré le ${new Date(m[1]).toLocaleDateString("fr-FR")} : demandez son ` +
    "renouvellement à l'autorité qui vous a désigné (R8)."],
  [/^enter the code of your authenticator app/, () => "Saisissez le code de votre application d'authentification."],
  [/^wrong authenticator code/, () => "Code d'authentification incorrect."],
  [/^this account is disabled/, () => "Ce compte est désactivé."],
  [/^a second factor is required/, () =>
    "Un second facteur est exigé pour ce compte et aucun n'est enrôlé : adressez-vous à un administrateur."],
  [/^your roles do not include the (\w+) permission/, (m) => `Vos rôles ne comprennent pas le droit « ${m[1]} » (R10).`],
  [/is not among the communes you are designated for/, () => "Cette commune ne fait pas partie de votre désignation (R9)."],
  [/^the (municipal|national) police hold (\S+?)'s cameras now/, (m) =>
    `La police ${m[1] === "national" ? "nationale" : "municipale"} a la main sur les caméras de ` +
    `${m[2]} (bascule, R27).`],
  [/being commissioned/, () => "Caméra en mise en service : aucune image avant l'approbation de ses masques."],
  [/^the camera is disabled/, () => "Caméra désactivée."],
  [/^(your session has ended|not signed in)/, () => "Votre session a pris fin : reconnectez-vous."],
  [/^a version without any polygon is approved only/, () =>
    "Une version sans polygone ne s'approuve qu'en cochant « aucun espace privé dans le champ »."],
  [/^masking failed: nothing is shown/, () => "Masquage en échec : rien n'est diffusé."],
  [/^the camera sends no image/, () => "La caméra n'envoie aucune image."],
  [/^masking did not answer/, () => "Le service de masquage ne répond pas : la caméra envoie-t-elle des images ?"],
  [/^no image: no keyframe yet/, () => "Pas encore d'image clé : réessayez dans quelques secondes."],
  [/^nothing recorded at/, () => "Aucun enregistrement à cet instant."],
  [/^the reason is required|field required/i, () => "Le motif est obligatoire."],
];

export function fr(reason) {
  const text = String(reason ?? "");
  for (const [pattern, render] of RULES) {
    const m = text.match(pattern);
    if (m) return render(m);
  }
  return text;
}

/** A camera's state as the wall shows it: [label, css class]. */
export function cameraState(camera) {
  if (camera.state === "disabled") return ["désactivée", "desactivee"];
  if (camera.state === "commissioning") return ["en mise en service", "en-mise-en-service"];
  if (camera.masking === "failed") return ["masquage en échec", "masquage-en-echec"];
  if (camera.masking === "starting" && camera.online) return ["démarrage", "hors-ligne"];
  if (camera.online) return ["en ligne", "en-ligne"];
  return ["hors ligne", "hors-ligne"];
}

export const LIVE_STATES = {
  offline: "Caméra hors ligne", masking_failed: "Masquage en échec : aucune image n'est diffusée",
  commissioning: "Caméra en mise en service", disabled: "Caméra désactivée",
};
