import { frDate, frDateTime } from "./dom.js";

// The gateway answers in English (logs, API); people read French. A refusal carries a stable code
// (issue 37: libs/vigie/plumbing/refusals.py) and its sentence is written here from the code and its
// params, so rewording the English changes nothing on screen; tests/viewer_gateway/test_refusals.py
// refuses a code without its French. The older reasons without a code are still recognised by
// their English (RULES), and anything else is shown as the gateway said it rather than hidden.
export const HOLDERS = { municipal_police: "Police municipale", national_police: "Police nationale" };

export const ROLES = {
  operator: "Opérateur", supervisor: "Superviseur", national_police: "Police nationale",
  mask_admin: "Administrateur des masques", admin: "Administrateur", auditor: "Auditeur",
  deployment_admin: "Administrateur du déploiement",
};

export const CATEGORIES = {
  intervention: "Intervention en cours", damage: "Dégradation constatée",
  judicial_requisition: "Réquisition judiciaire", verbalisation: "Vidéo-verbalisation",
  right_of_access: "Droit d'accès d'une personne filmée", other: "Autre motif",
};

export const MODES = { fill: "Opaque", pixelate: "Pixellisé", blur: "Flou" };


/** Each refusal's code → its sentence, from the refusal's params. */
export const CODES = {
  "approval.same_person": () => "La seconde approbation est donnée par une autre personne que celle qui a demandé.",
  "copy.four_eyes": () => "Une autre personne que celle qui a demandé la copie doit l'approuver (double regard).",
  "hold.not_pending": (p) => `Ce gel est ${STATES[p.state] || p.state} : seul un gel en attente s'approuve.`,
  "export.not_pending": (p) => `Cette extraction est ${STATES[p.state] || p.state} : seule une extraction en attente s'approuve.`,
  "hold.nothing_left": (p) =>
    `Rien de cette période ne peut plus être conservé : la commune garde ses enregistrements ${p.days} jours ` +
    "(l'attestation d'effacement dit quand ils ont été effacés).",
  "export.period_too_long": (p) => `La période dépasse ${p.hours} heures : une extraction par lieu et moment demandés.`,
  "export.required": (p) => `${REQUIRED[p.field] || "Ce champ"} : obligatoire.`,
  "period.ends_in_future": () => "La période se termine dans le futur : extrayez ce qui est déjà filmé.",
  "period.ends_before_start": () => "La fin est avant le début : corrigez les dates.",
  "period.in_future": () => "Cette période est dans le futur : rien n'est encore enregistré.",
  "account.username_taken": (p) => `L'identifiant ${p.username} est déjà pris : choisissez-en un autre.`,
  "account.password_too_short": (p) => `Mot de passe : ${p.characters} caractères au moins.`,
  "account.no_role": () => "Cochez au moins un rôle.",
  "account.national_police_alone": () =>
    "Un compte de police nationale n'a aucun autre rôle : polices municipale et nationale ont des comptes distincts.",
  "access_request.not_found": (p) => `Aucune demande d'accès n° ${p.id} dans vos communes.`,
  "evidence.altered": () => "La copie conservée ne correspond plus à son empreinte (SHA-256) : elle a été altérée après le gel ; rien n'est remis. Prévenez l'exploitant.",
  "copy.camera_not_requested": (p) => `La demande ne porte pas sur la caméra ${p.camera}.`,
  "copy.too_long": (p) => `Une copie couvre ${p.minutes} minutes au plus : une copie par moment où la personne apparaît.`,
  "copy.nothing_held": () => "Rien de cette demande n'est conservé : la période était effacée à sa réception (l'attestation d'effacement dit quand).",
  "copy.outside_held_period": (p) => `La copie doit tenir dans la période conservée, du ${frDateTimeIso(p.start)} au ${frDateTimeIso(p.end)}.`,
  "copy.box_after_end": (p) => `Le cadre de la personne est placé à ${p.at} s, après la fin de la copie (${p.duration} s).`,
  "copy.not_found": (p) => `Aucune copie n° ${p.id} pour cette demande.`,
  "copy.rejection_reason_required": () => "Dites ce qui ne va pas dans la copie.",
  "copy.nothing_recorded": () => "Le gel ne contient aucun enregistrement de cette caméra sur ce créneau (effacé avant la demande, ou jamais enregistré).",
  "copy.not_pending": (p) => `Cette copie est ${STATES[p.state] || p.state} : seul le cadre d'une copie en attente s'approuve.`,
  "copy.not_previewed": (p) => `Cette copie est ${STATES[p.state] || p.state} : seul un aperçu s'approuve.`,
  "copy.not_rejectable": (p) => `Cette copie est ${STATES[p.state] || p.state} : elle ne peut plus être rejetée.`,
  "access_request.received_in_future": () => "Une demande ne peut pas avoir été reçue dans le futur.",
  "camera.unknown": (p) => `Caméras inconnues à ${p.commune} : ${p.cameras}.`,
  "access_request.extension_months": () => "Une prolongation est d'un ou deux mois (trois mois en tout au plus).",
  "access_request.extension_reason_required": () => "Une prolongation dit son motif (communiqué à la personne).",
  "access_request.grounds_required": () => "Un refus ou une limitation énonce ses motifs (R23).",
  "access_request.required": (p) => `${ACCESS_FIELDS[p.field] || "Ce champ"} : obligatoire.`,
  "access_request.deadline_already": () => "L'échéance est déjà à cette date.",
  "access_request.extension_past_three_months": () => "Une prolongation ne peut dépasser trois mois après la réception.",
  "access_request.closed": () => "La demande est close.",
  "access_request.copy_not_approved": () => "Répondez par une copie une fois celle-ci approuvée : préparez-la, visionnez son aperçu, approuvez-la (R22).",
  "access_request.unanswered": () => "Répondez à la demande avant de la clore.",
  "access_request.viewing_not_booked": () => "Fixez le rendez-vous de visionnage avant de l'enregistrer comme fait.",
  "access_request.viewing_time_required": () => "Un visionnage sur place se fixe avec sa date et son heure.",
  "export.no_camera": () => "Cochez au moins une caméra.",
  "period.no_offset": () => "Dates sans fuseau horaire : rechargez la page.",
  "export.camera_name": (p) => `${p.camera} : une caméra se nomme COMMUNE/CAMÉRA.`,
  "export.second_approval_needed": () => "L'extraction couvre plus d'heures-caméra qu'une seule personne peut geler : un second superviseur l'approuve d'abord.",
  "export.not_found": (p) => `Aucune extraction n° ${p.id}.`,
  "export.exists": (p) => `L'extraction ${p.id} existe déjà.`,
  "commune.unknown": (p) => `Commune inconnue : ${p.commune}.`,
  "hold.not_found": (p) => `Aucun gel n° ${p.id} dans vos communes.`,
  "segment.altered": () => "Un enregistrement ne correspond plus à son empreinte (SHA-256) : stockage altéré. Prévenez l'exploitant.",
  "hold.release_reason_required": () => "Qui lève le gel et pourquoi : les deux sont obligatoires.",
  "hold.already_released": (p) => `Ce gel a déjà été levé le ${frDate(p.on)}.`,
  "keep.not_a_list": () => "Le suivi du cadre est une liste non vide de positions (instant, cadre).",
  "keep.not_json": () => "Le suivi du cadre n'est pas du JSON valide.",
  "keep.entry_fields": (p) => `Position ${p.entry} : exactement un instant et un cadre.`,
  "keep.entry_time": (p) => `Position ${p.entry} : l'instant est un nombre de secondes, 0 ou plus.`,
  "keep.entry_box": (p) => `Position ${p.entry} : le cadre est [x, y, largeur, hauteur] en pixels.`,
  "keep.entry_box_size": (p) => `Position ${p.entry} : un cadre a une largeur et une hauteur positives, x et y ≥ 0.`,
  "keep.times_not_increasing": (p) => `Position ${p.entry} : les instants doivent croître.`,
  "keep.unreadable": () => "Le fichier du suivi du cadre est illisible.",
  "keep.box_outside": (p) => `À ${p.at} s, le cadre sort de l'image (${p.width}×${p.height}).`,
  "mask.invalid": (p) => `Masques invalides : ${p.reasons}.`,
  "authorisation.reference_required": () => "La référence de l'arrêté préfectoral est obligatoire.",
  "authorisation.ends_before_granted": () => "Une autorisation prend fin après avoir été accordée.",
  "authorisation.too_long": (p) => `Une autorisation dure cinq ans au plus (CSI L252-4) : elle prend fin le ${frDate(p.until)} au plus tard.`,
  "authorisation.no_purpose": () => "Une autorisation nomme au moins une finalité.",
  "authorisation.unknown_purposes": (p) => `Finalités inconnues : ${p.purposes} (les finalités autorisées sont celles de l'article L251-2 du CSI).`,
  "authorisation.unknown_recipients": () => "Destinataires : choisissez parmi ceux de la liste.",
  "authorisation.other_recipients": () => "Nommez les autres destinataires, et seulement avec « autres ».",
  "authorisation.retention_bounds": () => "Les durées de conservation sont de 1 à 30 jours, la plus courte d'abord (R4).",
  "authorisation.no_camera": () => "Cochez au moins une caméra à rattacher.",
  "authorisation.exists": (p) => `L'autorisation ${p.reference} est déjà enregistrée.`,
  "authorisation.not_found": (p) => `Aucune autorisation de ce numéro à ${p.commune}.`,
  "authorisation.no_national_police": (p) => `L'autorisation ${p.reference} ne désigne pas la police nationale comme destinataire : pas de bascule vers elle (R27).`,
  "authorisation.convention_required": () => "La référence de la convention de coordination est obligatoire (R28).",
  "authorisation.camera_refused": (p) => `${p.camera} : refusée par la base (${p.reason}).`,
  "commune.slug": (p) => `${p.slug} : un identifiant de commune est fait de lettres minuscules, chiffres, « - » ou « _ ».`,
  "commune.name_required": () => "Le nom de la commune est obligatoire.",
  "commune.retention_range": (p) => `La conservation est de 1 à ${p.max_days} jours (R4 : un mois au plus), pas ${p.days}.`,
  "commune.slug_taken": (p) => `L'identifiant ${p.slug} est déjà pris par une commune.`,
  "commune.nothing_changed": () => "Dites ce qui change : le nom, le responsable du traitement ou le contact pour les droits.",
  "commune.decided_by_required": () => "Dites qui a décidé du changement.",
  "commune.required": (p) => `${COMMUNE_FIELDS[p.field] || "Ce champ"} : obligatoire, le registre public le nomme (R25).`,
  "commune.time_zone": (p) => `${p.zone} n'est pas un fuseau horaire (Europe/Paris, America/Cayenne…).`,
  "commune.retention_outside_authorisation": (p) => `Conservation hors des bornes de l'autorisation préfectorale (R5) : ${p.reason}.`,
  "incident.found_in_future": () => "Une violation ne peut pas avoir été découverte dans le futur.",
  "incident.no_notice_reason": () => "Une violation non notifiée dit pourquoi elle n'engendre vraisemblablement pas de risque pour les personnes (art. 33(5)).",
  "incident.cnil_reference_required": () => "La référence de la notification à la CNIL est obligatoire.",
  "incident.notified_in_future": () => "La notification ne peut pas être dans le futur.",
  "incident.required": (p) => `${INCIDENT_FIELDS[p.field] || "Ce champ"} : obligatoire (art. 33(3)).`,
  "incident.not_found": (p) => `Aucune violation n° ${p.id} dans vos communes.`,
  "incident.already_notified": () => "La notification est déjà enregistrée.",
  "incident.notified_before_found": () => "La notification ne peut pas précéder la découverte.",
  "sign.place_required": () => "L'emplacement du panneau est obligatoire.",
  "sign.installed_in_future": () => "Un panneau s'enregistre une fois posé : sa date ne peut pas être dans le futur.",
  "sign.coordinates": () => "Latitude et longitude vont ensemble.",
  "sign.no_camera": () => "Un panneau informe d'au moins une caméra.",
  "sign.removal_reason_required": () => "Dites pourquoi le panneau a été retiré (dégradé, déplacé, volé…).",
  "sign.removed_in_future": () => "Un panneau s'enregistre comme retiré une fois qu'il l'est : la date ne peut pas être dans le futur.",
  "sign.not_found": (p) => `Aucun panneau n° ${p.id} dans cette commune.`,
  "sign.already_removed": (p) => `Ce panneau est déjà enregistré comme retiré le ${frDate(p.on)}.`,
  "sign.removed_before_installed": (p) => `Retiré avant d'avoir été posé (le ${frDate(p.on)}).`,
  "account.unknown_roles": (p) => `Rôles inconnus : ${p.roles}.`,
  "account.username": () => "Identifiant : lettres minuscules, chiffres, « . », « _ » ou « - », de 2 à 63 caractères.",
  "account.trained_in_future": () => "La date de formation ne peut pas être dans le futur.",
  "account.designated_by_required": () => "Désigné par : qui a désigné l'agent est obligatoire (R8).",
  "account.unknown_communes": (p) => `Communes inconnues : ${p.communes}.`,
  "plate.not_french": () => "Plaque française invalide : SIV AB-123-CD (sans I, O ni U) ou FNI 123 ABC 91.",
  "plate.country": (p) => `Pays inconnu : ${p.country} (un code ISO 3166 comme FR, BE, DE).`,
  "plate.length": () => "Une plaque a de 2 à 12 lettres et chiffres.",
  "hours.time": (p) => `Horaires : ${p.text} n'est pas une heure (HH:MM).`,
  "hours.days": (p) => `Horaires : jours inconnus (${p.days}).`,
  "hours.pairs": (p) => `Horaires (${p.day}) : une liste de créneaux [début, fin].`,
  "hours.interval": (p) => `Horaires (${p.day}) : chaque créneau est [« HH:MM », « HH:MM »].`,
  "hours.empty_interval": (p) => `Horaires (${p.day}) : un créneau de durée nulle.`,
  "copy.nothing_held_at": (p) => `Rien de ${p.camera} n'est conservé à cet instant (${frDateTime(p.at)}).`,
  "copy.not_ready": (p) => `Cette copie est ${STATES[p.state] || p.state}.`,
  "copy.erased": () => "La copie est effacée (sa durée de conservation est passée).",
  "copy.not_stored": () => "La copie n'est plus stockée.",
  "still.none": () => "Aucune image à cet instant de l'enregistrement conservé.",
  "camera.none_named": () => "Cochez au moins une caméra.",
  "alarm.not_found": () => "Aucune alarme de ce numéro dans vos communes.",
  "alarm.already_acknowledged": (p) => `Déjà acquittée par ${p.by}.`,
  "bookmark.label_too_long": (p) => `Le libellé fait ${p.characters} caractères au plus.`,
  "camera.authorisation_unknown": (p) => `Aucune autorisation « ${p.reference} » n'est enregistrée pour cette commune : enregistrez d'abord l'arrêté préfectoral (écran Conformité).`,
  "camera.unknown_purposes": (p) => `Finalités qui ne sont pas celles de l'article L251-2 du CSI : ${p.purposes}.`,
  "timeline.too_long": (p) => `Une frise couvre ${p.days} jours au plus : raccourcissez la période.`,
  "camera.exists": (p) => `La caméra ${p.camera} existe déjà : choisissez un autre identifiant.`,
  "camera.service_by_masks": () => "Une caméra passe en service quand un administrateur des masques approuve ses masques (écran Masques).",
  "camera.sensor_taken": () => "Ce capteur de cet appareil est déjà une autre caméra.",
  "commune.not_yours": (p) => `La commune ${p.commune} ne fait pas partie des vôtres.`,
  "handover.unavailable": () => "Pas de bascule vers la police nationale : aucune autorisation valide ne la désigne avec une convention de coordination (R27, R28).",
  "handover.no_manual_switch": () => "Aucune bascule manuelle n'est en cours.",
  "camera.not_found": (p) => `Aucune caméra ${p.camera} dans vos communes.`,
  "export.erased": (p) => `Le paquet a été effacé le ${frDate(p.on)} (conservé 30 jours, R6) ; les images dont il est fait restent sous leur gel.`,
  "export.not_ready": (p) => `L'extraction est ${STATES[p.state] || p.state} : rien à télécharger encore.`,
  "export.not_stored": () => "Le paquet n'est plus stocké (sa durée de conservation est passée).",
  "export.not_deliverable": (p) => `L'extraction est ${STATES[p.state] || p.state} : elle ne peut pas avoir été remise.`,
  "export.already_delivered": () => "La remise est déjà enregistrée.",
  "snapshot.camera_disabled": () => "Caméra désactivée : pas d'instantané.",
  "snapshot.resurvey_needed": () => "Caméra en service : cochez la révision du champ pour prendre un instantané.",
  "bus.unavailable": () => "La passerelle a perdu le bus vidéo : réessayez dans un instant.",
  "snapshot.no_image": () => "Aucune image clé reçue de la caméra : vérifiez qu'elle est en ligne, puis réessayez.",
  "mask.version_not_found": (p) => `Aucune version ${p.version} des masques de cette caméra.`,
  "mask.already_approved": (p) => `La version ${p.version} est déjà approuvée : enregistrez une nouvelle version.`,
  "mask.newer_approved": (p) => `La version ${p.version} est déjà approuvée : enregistrez celle-ci de nouveau pour qu'elle soit la plus récente.`,
  "mask.drawn_before_source_change": (p) => `La version ${p.version} a été dessinée avant le changement de source : dessinez sur un nouvel instantané.`,
  "mask.empty_needs_statement": () => "Une version sans polygone ne s'approuve qu'en cochant « aucun espace privé dans le champ ».",
  "masking.no_answer": () => "Le service de masquage ne répond pas : la caméra envoie-t-elle des images ?",
  "verbalisation.not_listed": () => "Votre compte n'est pas habilité à la vidéo-verbalisation (R32).",
  "offence.not_found": (p) => `Aucune infraction n° ${p.id} dans vos communes.`,
  "verbalisation.not_a_purpose": () => "L'autorisation de cette caméra ne comprend pas la constatation des infractions aux règles de la circulation (R32).",
  "verbalisation.live_only": () => "Une infraction se constate sur l'image en direct seulement : ouvrez le direct de la caméra (ni relecture immédiate, ni enregistrement) (R31).",
  "verbalisation.still_live_only": () => "Une image se prend sur le direct seulement : ouvrez le direct de la caméra (R31).",
  "offence.period": (p) => `Du… au… : une période de ${p.days} jours au plus, dans l'ordre.`,
  "offence.still_not_found": () => "Aucune image de ce numéro pour cette infraction.",
  "offence.still_erased": () => "Cette image a été effacée (R34).",
  "verbalisation.no_answer": () => "Le service de vidéo-verbalisation ne répond pas : réessayez dans un instant.",
  "playback.in_future": () => "Cet instant est dans le futur : rien n'est encore enregistré.",
  "playback.not_found": () => "Cette consultation n'existe pas ou n'est pas la vôtre.",
  "playback.ended": () => "Cette consultation est close : rouvrez-la avec son motif.",
  "playback.nothing_recorded": () => "Aucun enregistrement à cet instant.",
  "password.current_wrong": () => "Le mot de passe reçu est erroné.",
  "password.unchanged": () => "Le nouveau mot de passe doit différer de celui que vous avez reçu.",
  "account.communes_outside_yours": (p) => `Vous ne pouvez pas attribuer une commune pour laquelle vous n'êtes pas désigné : ${p.communes} (R9).`,
  "account.not_found": (p) => `Aucun compte ${p.username} dans vos communes.`,
  "account.deployment_admin_only": () => "Le compte d'un administrateur du déploiement se modifie par un autre administrateur du déploiement, ou sur le serveur (vigie user).",
  "account.designation_act_required": () => "Un compte ayant accès aux images est créé sur un acte de désignation : renseignez « Acte de désignation » (R8).",
  "account.own_rights": () => "Vous ne pouvez pas modifier vos propres rôles, communes ou désignation : demandez à un autre administrateur.",
  "account.wider_rights_need_act": () => "Élargir l'accès aux images demande l'acte de désignation : renseignez « Acte de désignation » (R8).",
  "account.own_second_factor": () => "Vous ne pouvez pas réinitialiser votre propre second facteur : demandez à un autre administrateur.",
  "view.no_post": () => "Cette session n'a pas de poste : reconnectez-vous en indiquant votre poste.",
  "view.too_many_panes": (p) => `Au plus ${p.panes} caméras dans une mosaïque ${p.size}×${p.size}.`,
  "permission.missing": (p) => `Vos rôles ne comprennent pas le droit « ${p.permission} » (R10).`,
  "commune.not_designated": () => "Cette commune ne fait pas partie de votre désignation (R9).",
  "training.missing": () => "Aucune date de formation à la protection des données sur votre compte (R11) : demandez à votre administrateur de l'enregistrer.",
  "handover.held_by": (p) => `La police ${p.holder === "national_police" ? "nationale" : "municipale"} a la main sur les caméras de ${p.commune} (bascule, R27).`,
  "camera.commissioning": () => "Caméra en mise en service : aucune image avant l'approbation de ses masques.",
  "camera.disabled": () => "Caméra désactivée.",
};

// What a record's state is called in a sentence (« Ce gel est levé »).
const STATES = {
  pending: "en attente", active: "actif", released: "levé", queued: "en file d'attente", building: "en préparation",
  ready: "prête", failed: "en échec", delivered: "remise", rejected: "rejetée", erased: "effacée",
};

// The fields each form names, as it labels them.
const ACCESS_FIELDS = {
  requester: "La personne qui demande", contact: "Comment lui répondre", identity_checked_by: "Qui a vérifié l'identité",
};
const COMMUNE_FIELDS = {
  name: "Le nom", controller: "Le responsable du traitement", rights_contact: "Où exercer ses droits",
};
const INCIDENT_FIELDS = {
  summary: "Ce qui s'est passé", data_concerned: "Les données concernées", people_concerned: "Les personnes concernées",
  measures: "Les mesures prises ou proposées",
};
const frDateTimeIso = (iso) => frDateTime(iso);

const REQUIRED = {
  reference: "Le numéro de PV ou de procédure", officer: "L'OPJ et son service", recipient: "Le destinataire",
  medium: "Le support ou le numéro de transfert", reason: "Le motif", created_by: "L'auteur de l'extraction",
};

/** A refusal as a person reads it: from its code, else its English reason (RULES), else as said. */
export function frProblem(body, status) {
  const say = body?.code && CODES[body.code];
  if (say) return say(body.params || {});
  if (Array.isArray(body?.detail)) return frValidation(body.detail);
  return fr(body?.detail || (status ? `erreur ${status}` : ""));
}

const RULES = [
  [/^wrong username or password/, () => "Identifiant ou mot de passe incorrect."],
  [/^too many failed logins/, () => "Trop de tentatives échouées : patientez avant de réessayer."],
  [/^your designation expired on (\S+?):/, (m) =>
    `Votre désignation a expiré le ${frDate(m[1])} : demandez son ` +
    "renouvellement à l'autorité qui vous a désigné (R8)."],
  [/^enter the code of your authenticator app/, () => "Saisissez le code de votre application d'authentification."],
  [/^wrong authenticator code/, () => "Code d'authentification incorrect."],
  [/^this account is disabled/, () => "Ce compte est désactivé."],
  [/^a second factor is required/, () =>
    "Un second facteur est exigé pour ce compte et aucun n'est enrôlé : adressez-vous à un administrateur."],
  [/^your roles do not include the (\w+) permission/, (m) => `Vos rôles ne comprennent pas le droit « ${m[1]} » (R10).`],
  [/is not among the communes you are designated for/, () => "Cette commune ne fait pas partie de votre désignation (R9)."],
  [/^no data-protection training date on your account/, () => "Aucune date de formation à la protection des données sur votre compte (R11) : demandez à votre administrateur de l'enregistrer."],
  [/^the (municipal|national) police hold (\S+?)'s cameras now/, (m) =>
    `La police ${m[1] === "national" ? "nationale" : "municipale"} a la main sur les caméras de ` +
    `${m[2]} (bascule, R27).`],
  [/being commissioned/, () => "Caméra en mise en service : aucune image avant l'approbation de ses masques."],
  [/^the camera is disabled/, () => "Caméra désactivée."],
  [/^the object store refused this service's write/, () =>
    "Le stockage a refusé l'écriture au service (droit manquant) : prévenez l'exploitant."],
  [/^the build was interrupted (\d+) times/, (m) =>
    `La préparation a été interrompue ${m[1]} fois : redemandez-la et prévenez l'exploitant.`],
  [/^(your session has ended|not signed in)/, () => "Votre session a pris fin : reconnectez-vous."],
  [/^masking failed: nothing is shown/, () => "Masquage en échec : rien n'est diffusé."],
  [/^the camera sends no image/, () => "La caméra n'envoie aucune image."],
  [/^masking did not answer/, () => "Le service de masquage ne répond pas : la caméra envoie-t-elle des images ?"],
  [/^no image: no keyframe yet/, () => "Pas encore d'image clé : réessayez dans quelques secondes."],
  [/^nothing recorded at/, () => "Aucun enregistrement à cet instant."],
  [/^the reason is required/i, () => "Le motif est obligatoire."],
  [/^set your own password first/, () => "Choisissez d'abord votre propre mot de passe."],
  [/^at most (\d+) snapshots of a camera in service/, (m) => `Au plus ${m[1]} instantanés par heure d'une caméra en service : réessayez plus tard.`],
  [/^at most (\d+) snapshots of a camera not in service/, (m) => `Au plus ${m[1]} instantanés par heure d'une caméra en mise en service : réessayez plus tard.`],
  [/^at most (\d+) snapshots by one account/, (m) => `Au plus ${m[1]} instantanés par heure pour un même compte : réessayez plus tard.`],
  [/^no image: /, () => "Aucune image clé reçue de la caméra : vérifiez qu'elle est en ligne, puis réessayez."],
  [/^no camera (\S+) in your communes/, (m) => `Aucune caméra ${m[1]} dans vos communes.`],
  [/^the gateway is not connected to NATS/, () => "La passerelle a perdu le bus vidéo : réessayez dans un instant."],
  [/^erreur 5\d\d/, () => "La passerelle ne répond pas correctement : réessayez ; si cela persiste, prévenez l'exploitation."],
];

// Field names and FastAPI's validation errors, for forms (issue 18: regexes reached agents).
const FIELDS = {
  username: "Identifiant", full_name: "Nom complet", password: "Mot de passe", roles: "Rôles",
  communes: "Communes", designated_by: "Désigné par", designation_expires: "Désignation jusqu'au",
  agent_number: "Matricule", slug: "Identifiant", name: "Nom", location: "Emplacement",
  rtsp_url: "Adresse RTSP", authorisation_ref: "Réf. autorisation", authorisation_expires: "Expire le",
  reason: "Motif", reference: "Référence", category: "Catégorie", at: "Instant", label: "Libellé",
  days: "Conservation", holder: "Main à", until: "Jusqu'à", starts_at: "Du", ends_at: "Au",
  commune: "Commune", state: "État", post: "Poste", totp: "Code", police_hours: "Horaires",
};
const PROBLEMS = {
  missing: () => "obligatoire",
  string_too_short: () => "obligatoire",
  string_too_long: (d) => `${d.ctx?.max_length ?? "trop de"} caractères au plus`,
  string_pattern_mismatch: (d, field) => field === "slug" || field === "username"
    ? "lettres minuscules, chiffres, « - » ou « _ », sans espace ni accent"
    : field === "rtsp_url" ? "une adresse rtsp://… sans espace" : "caractères non admis (retours à la ligne, caractères de contrôle)",
  greater_than_equal: (d) => `au moins ${d.ctx?.ge}`,
  less_than_equal: (d) => `au plus ${d.ctx?.le}`,
  too_short: (d) => `au moins ${d.ctx?.min_length} élément(s)`,
  literal_error: () => "valeur non prévue",
  enum: () => "valeur non prévue",
  date_from_datetime_parsing: () => "date invalide",
  date_parsing: () => "date invalide",
  datetime_from_date_parsing: () => "date et heure invalides",
  datetime_parsing: () => "date et heure invalides",
  timezone_aware: () => "date et heure sans fuseau",
  int_parsing: () => "un nombre entier",
  extra_forbidden: () => "champ inconnu",
};

/** FastAPI's validation errors as one French sentence: « Identifiant : lettres minuscules… ». */
export function frValidation(details) {
  return details.map((d) => {
    const loc = (d.loc || []).filter((p) => p !== "body" && p !== "query" && typeof p === "string");
    const field = loc[loc.length - 1] || "";
    const label = FIELDS[field] || field || "Requête";
    const problem = PROBLEMS[d.type]?.(d, field) ?? fr(d.msg);
    return `${label} : ${problem}.`;
  }).join(" ");
}

/** Register action codes as an auditor reads them. */
export const ACTIONS = {
  "login": "Connexion", "logout": "Déconnexion",
  "live.view": "Direct ouvert", "live.ended": "Direct fermé", "live.tile": "Mur d'images (vignette)",
  "playback": "Consultation d'enregistrement", "bookmark.created": "Signet posé",
  "alarm.acknowledged": "Alarme acquittée", "handover.switched": "Bascule de la main",
  "handover.manual_switch": "Bascule manuelle", "handover.manual_end": "Fin de bascule manuelle",
  "handover.exception_added": "Exception datée ajoutée",
  "mask.snapshot": "Instantané (image non masquée)", "mask.saved": "Version de masques enregistrée",
  "mask.approved": "Version de masques approuvée", "camera.created": "Caméra créée",
  "camera.changed": "Caméra modifiée", "camera.source_changed": "Image de la caméra changée",
  "commune.hours_changed": "Horaires modifiés", "commune.retention_changed": "Durée de conservation modifiée",
  "user.created": "Compte créé", "user.changed": "Compte modifié", "user.totp_enrolled": "Second facteur enrôlé", "user.password_set": "Mot de passe choisi par l’agent",
  "register.exported": "Export du registre", "register.purged": "Registre purgé",
  "deletion": "Effacement (durée de conservation)", "hold.created": "Gel (réquisition)", "hold.released": "Gel levé",
  "export.requested": "Extraction demandée (réquisition)", "export.created": "Extraction prête (réquisition)",
  "export.downloaded": "Extraction téléchargée", "export.delivered": "Extraction remise",
  "commune.created": "Commune créée", "access.refused": "Accès refusé (formation, R11)",
  "incident.declared": "Violation de données déclarée", "incident.notified": "Violation notifiée à la CNIL", "user.communes_changed": "Communes du compte modifiées",
  "access_request.opened": "Demande d'accès reçue", "access_request.extended": "Demande d'accès prolongée",
  "access_request.answered": "Demande d'accès répondue", "access_request.viewing_done": "Visionnage sur place fait",
  "access_request.closed": "Demande d'accès close", "access_request.still_viewed": "Image gelée consultée (demande d'accès)",
  "access_request.copy_requested": "Copie floutée demandée", "access_request.copy_made": "Copie floutée préparée",
  "access_request.copy_previewed": "Copie floutée visionnée", "access_request.copy_approved": "Copie floutée approuvée",
  "access_request.copy_rejected": "Copie floutée rejetée", "access_request.copy_downloaded": "Copie floutée téléchargée",
  "access_request.copy_erased": "Copie floutée effacée",
};

export const ALARMS = {
  camera_lost: "Caméra perdue", masking_failed: "Masquage en échec",
  recorder_late: "Enregistrement en retard", authorisation_expiring: "Autorisation préfectorale bientôt expirée",
  unauthorised: "Sans autorisation préfectorale valide",
  below_norms: "Sous les normes techniques (arrêté du 3 août 2007)",
};

/** « damage: abribus dégradé » → « Dégradation constatée : abribus dégradé » */
export function frReason(reason) {
  const m = String(reason || "").match(/^([a-z_]+): ([\s\S]*)$/);
  return m && CATEGORIES[m[1]] ? `${CATEGORIES[m[1]]} : ${m[2]}` : reason || "";
}

export function fr(reason) {
  const text = String(reason ?? "");
  for (const [pattern, render] of RULES) {
    const m = text.match(pattern);
    if (m) return render(m);
  }
  return text;
}

// The gateway's one status per camera (camera_status.py): every screen says the same.
const STATUS = {
  disabled: ["désactivée", "desactivee"], commissioning: ["en mise en service", "en-mise-en-service"],
  unauthorised: ["sans autorisation", "sans-autorisation"],
  masking_failed: ["masquage en échec", "masquage-en-echec"], offline: ["hors ligne", "hors-ligne"],
  starting: ["démarrage", "demarrage"], online: ["en ligne", "en-ligne"],
};

/** A camera's state as every screen shows it: [label, css class]. */
export function cameraState(camera) {
  return STATUS[camera.status] || STATUS.offline;
}

export const LIVE_STATES = {
  offline: "Caméra hors ligne", masking_failed: "Masquage en échec : aucune image n'est diffusée",
  commissioning: "Caméra en mise en service", disabled: "Caméra désactivée",
  unauthorised: "Sans autorisation préfectorale valide : la caméra ne filme pas (R3)",
  starting: "Démarrage du masquage : en attente d'une image clé", waiting: "En attente d'images de la caméra",
  gone: "Caméra supprimée",
};
