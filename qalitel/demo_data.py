"""What the demo tenant holds: a French-first mechanical workshop, some English.

Pure data, read by :mod:`qalitel.demo` and :mod:`qalitel.demo_records`. Titles are unique:
they are how a second run of ``qalitel demo`` recognises what exists already. Dates are
days before the day the demo is first prepared, so overdue actions stay overdue.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPANY = "Démo Industries"
ADMIN = ("admin@demo.example", "Alice Moreau")

# key, email, name, profile (the admin above is the tenant's first admin)
USERS = (
    ("claire", "qualite@demo.example", "Claire Dubois", "manager"),
    ("marc", "production@demo.example", "Marc Lefèvre", "manager"),
    ("ulysse", "user@demo.example", "Ulysse Bernard", "user"),
    ("sophie", "atelier@demo.example", "Sophie Girard", "user"),
    ("james", "j.carter@demo.example", "James Carter", "user"),
)

# The confidential folder is open to the members of this group (Claire), and to admins.
BOARD_GROUP = "Comité de direction"
BOARD_MEMBERS = ("claire",)

PRODUCTION = "Production"
SUPPLIERS = "Fournisseurs"
CUSTOMERS = "Réclamations clients"
AUDITS = "Audits"
CONFIDENTIAL = "Direction — confidentiel"
FOLDERS = ((PRODUCTION, False), (SUPPLIERS, False), (CUSTOMERS, False), (AUDITS, False),
           (CONFIDENTIAL, True))

ENGINEER = ("ingenieur.demo@scoqi.example", "Étienne Roux (SCOQI)")
REQUEST_REASON = (
    "Ticket SUP-2025-0142 : depuis la dernière mise à jour, le tableau de bord affiche un "
    "nombre d'actions en retard différent de la liste des actions. Nous souhaitons lire les "
    "actions concernées pour comprendre l'écart, sans rien modifier.")
REQUEST_TICKET = "SUP-2025-0142"


@dataclass(frozen=True)
class Spec:
    """One non-conformity and the story it has by now."""

    title: str
    description: str
    origin: str
    severity: str
    folder: str | None
    status: str
    days_ago: int
    cause: str = ""
    lang: str = "fr"


def _fr(title, description, origin, severity, folder, status, days, cause=""):
    return Spec(title, description, origin, severity, folder, status, days, cause)


def _en(title, description, origin, severity, folder, status, days, cause=""):
    return Spec(title, description, origin, severity, folder, status, days, cause, "en")


RECORDS = (
    _fr("Cotes hors tolérance sur arbres Ø25 (lot 2411-07)",
        "Contrôle final : 12 arbres sur 200 mesurés à 25,06 mm pour une tolérance de "
        "25 ±0,04 mm.", "internal", "major", PRODUCTION, "closed", 110,
        "Usure de l'outil de finition non détectée : aucune fréquence de changement d'outil "
        "n'était définie pour ce matériau."),
    _fr("Bavures sur carters usinés, poste de fraisage F3",
        "Bavures coupantes sur les arêtes intérieures, signalées par le montage.",
        "internal", "minor", PRODUCTION, "verification", 60,
        "Programme d'ébavurage supprimé lors de la mise à jour de la gamme."),
    _fr("Traitement thermique : dureté insuffisante sur pignons",
        "Dureté mesurée à 52 HRC au lieu de 58-62 HRC sur trois charges consécutives.",
        "internal", "critical", PRODUCTION, "treatment", 35,
        "Sonde du four n° 2 décalée de 15 °C ; étalonnage échu depuis trois mois."),
    _fr("Étiquetage erroné de palettes expédiées",
        "Deux palettes de la référence 20-118 étiquetées 20-181.",
        "internal", "major", PRODUCTION, "closed", 95,
        "Deux références proches imprimées depuis le même modèle d'étiquette."),
    _fr("Fuite d'huile sur la presse hydraulique P12",
        "Flaque d'huile sous la presse en début de poste ; zone balisée.",
        "internal", "minor", PRODUCTION, "open", 3),
    _fr("Pièces mélangées entre deux références au conditionnement",
        "Un carton de brides B-40 contenait cinq brides B-45.",
        "internal", "major", PRODUCTION, "analysis", 12),
    _fr("Rugosité non conforme sur portées de roulement",
        "Ra mesuré à 1,6 µm pour une exigence de 0,8 µm.",
        "internal", "major", PRODUCTION, "treatment", 28,
        "Liquide de coupe trop dilué (concentration mesurée à 3 % au lieu de 6 %)."),
    _fr("Soudures poreuses sur châssis CH-40",
        "Porosités visibles sur les cordons d'angle, détectées au ressuage.",
        "internal", "critical", PRODUCTION, "verification", 48,
        "Débit de gaz de protection insuffisant : détendeur défectueux."),
    _fr("Dossier de lot incomplet pour le lot 2502-03",
        "Le relevé des contrôles intermédiaires manque pour l'équipe de nuit.",
        "internal", "minor", PRODUCTION, "open", 1),
    _fr("Instrument de mesure non étalonné utilisé en production",
        "Pied à coulisse n° 118 utilisé alors que son étalonnage est échu.",
        "internal", "major", PRODUCTION, "analysis", 9),
    _fr("Peinture : défaut d'adhérence sur capots",
        "Écaillage au test de quadrillage sur 8 capots sur 50.",
        "internal", "major", PRODUCTION, "treatment", 22,
        "Dégraissage insuffisant après changement de fournisseur de lessive."),
    _fr("Taraudages M8 incomplets sur brides",
        "Le tampon « entre » ne passe pas sur 3 % des brides.",
        "internal", "minor", PRODUCTION, "closed", 80,
        "Taraud usé ; pas de compteur d'utilisation sur le centre d'usinage."),
    _fr("Acier 42CrMo4 livré sans certificat matière",
        "Livraison du 3 du mois reçue sans certificat 3.1 ; lot bloqué au magasin.",
        "supplier", "major", SUPPLIERS, "treatment", 30,
        "Le fournisseur a changé de transporteur ; les certificats partaient avec une autre "
        "expédition."),
    _fr("Retard de livraison récurrent — visserie Bonnet SARL",
        "Quatrième retard en deux mois ; deux arrêts de ligne évités de justesse.",
        "supplier", "minor", SUPPLIERS, "analysis", 15),
    _fr("Joints toriques hors dimension (lot fournisseur J-5521)",
        "Diamètre intérieur mesuré à 31,2 mm au lieu de 32 ±0,3 mm.",
        "supplier", "major", SUPPLIERS, "verification", 40,
        "Moule usé chez le fournisseur ; contrôle de réception par échantillonnage trop "
        "faible."),
    _fr("Emballages endommagés à réception — roulements",
        "Cartons écrasés, deux roulements avec cages déformées.",
        "supplier", "minor", SUPPLIERS, "closed", 70,
        "Palettes gerbées sur trois niveaux pendant le transport."),
    _fr("Traces de corrosion sur tôles galvanisées",
        "Rouille blanche sur les tôles du dessus de la livraison.",
        "supplier", "major", SUPPLIERS, "open", 2),
    _en("Non-conformity report: wrong resin grade delivered by PolyTech GmbH",
        "Delivery note says PA66-GF30 but the bags contain PA6-GF30; moulding trials failed.",
        "supplier", "critical", SUPPLIERS, "treatment", 26,
        "The order confirmation listed the old grade: the supplier's ERP still mapped our "
        "part number to it."),
    _fr("Certificat de conformité RoHS manquant — cartes électroniques",
        "Le dossier qualité de la livraison ne contient pas la déclaration RoHS.",
        "supplier", "minor", SUPPLIERS, "analysis", 8),
    _fr("Réclamation client : rayures sur boîtiers anodisés (Aéro Sud)",
        "Le client refuse 40 boîtiers pour rayures sur les faces visibles.",
        "customer", "major", CUSTOMERS, "treatment", 20,
        "Manutention sans intercalaires entre l'anodisation et l'emballage."),
    _en("Customer complaint: missing torque marks on assemblies (Nordic Pumps)",
        "Customer incoming inspection found 6 assemblies without torque marks.",
        "customer", "major", CUSTOMERS, "verification", 45,
        "The marking step was missing from the assembly instruction of the new variant."),
    _fr("Réclamation : notice de montage en anglais seulement",
        "Le client demande la notice en français, exigée par son contrat.",
        "customer", "minor", CUSTOMERS, "closed", 100,
        "La traduction française n'avait pas été mise à jour dans la GED."),
    _fr("Retour client : bruit anormal sur motoréducteurs MR-200",
        "Trois motoréducteurs retournés après 200 heures de fonctionnement.",
        "customer", "critical", CUSTOMERS, "analysis", 6),
    _fr("Livraison incomplète — commande 45-88812",
        "Il manque 2 colis sur 5 à la livraison chez le client.",
        "customer", "minor", CUSTOMERS, "open", 0),
    _fr("Réclamation : couleur RAL non conforme sur armoires",
        "Armoires livrées en RAL 7038 au lieu de 7035.",
        "customer", "major", CUSTOMERS, "closed", 85,
        "Référence RAL 7035 confondue avec 7038 lors de la commande de poudre."),
    _en("Customer complaint: late delivery of spare parts (Iberica Motors)",
        "Spare parts delivered 12 days after the agreed date.",
        "customer", "minor", CUSTOMERS, "verification", 38,
        "Spare-part orders were not flagged as priority in the planning tool."),
    _fr("Réclamation : vis desserrées sur supports moteurs",
        "Le client signale des vis desserrées sur 2 supports après transport.",
        "customer", "major", CUSTOMERS, "open", 4),
    _fr("Audit interne : procédure de maîtrise des documents non appliquée",
        "Des versions périmées de trois instructions sont affichées en atelier.",
        "audit", "minor", AUDITS, "treatment", 33,
        "Les responsables d'atelier ne connaissaient pas la nouvelle procédure ; aucune "
        "formation n'était prévue."),
    _fr("Audit ISO 9001 : revue de direction sans analyse des indicateurs",
        "Écart mineur relevé par l'organisme certificateur.",
        "audit", "major", AUDITS, "closed", 120,
        "Le modèle de compte rendu ne comportait pas de rubrique « indicateurs »."),
    _fr("Audit client : traçabilité des lots incomplète au magasin",
        "Impossible de retrouver le lot matière de deux pièces prélevées.",
        "audit", "major", AUDITS, "verification", 55,
        "Les sorties de stock manuelles ne saisissaient pas le numéro de lot."),
    _fr("Audit interne : fiches de poste non signées",
        "Quatre fiches de poste sur dix sans visa du responsable.",
        "audit", "minor", AUDITS, "analysis", 10),
    _en("Internal audit: calibration records not reviewed",
        "The calibration register has not been reviewed since last year.",
        "audit", "minor", AUDITS, "open", 5),
    _fr("Formation sécurité non réalisée pour deux intérimaires",
        "Deux intérimaires ont travaillé une semaine sans accueil sécurité.",
        "internal", "major", None, "treatment", 18,
        "Accueil des intérimaires confié à l'équipe de nuit, sans liste de contrôle."),
    _fr("Extincteur manquant près de la cabine de peinture",
        "Relevé lors de la tournée sécurité mensuelle.",
        "internal", "minor", None, "closed", 65,
        "Extincteur déplacé lors de travaux et non remis en place."),
    _fr("Écart d'inventaire sur la référence 10-4471",
        "Stock informatique : 240 ; stock physique : 198.",
        "internal", "minor", None, "unfounded", 7),
    _fr("Plan de contrôle obsolète affiché au poste de contrôle final",
        "Indice B affiché alors que l'indice D est en vigueur.",
        "internal", "minor", None, "open", 2),
    _fr("Accident évité de justesse : chute d'une charge au pont roulant",
        "Une charge de 800 kg a glissé de l'élingue ; personne n'était dessous.",
        "internal", "critical", CONFIDENTIAL, "treatment", 16,
        "Élingue textile utilisée au-delà de sa charge maximale ; vérification périodique "
        "non faite."),
    _fr("Litige fournisseur : pénalités de retard contestées",
        "Le fournisseur conteste 18 000 € de pénalités ; mise en demeure reçue.",
        "supplier", "major", CONFIDENTIAL, "analysis", 11),
    _fr("Fuite d'informations tarifaires vers un concurrent",
        "Une grille tarifaire interne a été citée par un concurrent lors d'un appel d'offres.",
        "internal", "critical", CONFIDENTIAL, "open", 3),
    _fr("Réclamation grand compte : menace de déréférencement",
        "Le client demande un plan d'actions signé par la direction sous quinze jours.",
        "customer", "critical", CONFIDENTIAL, "verification", 30,
        "Trois réclamations successives sans réponse formelle dans les délais contractuels."),
)

# Record whose verification failed once: back to treatment, then verification again.
REOPENED = "Soudures poreuses sur châssis CH-40"
# Records shared with Ulysse (a plain user sees what concerns him, and what is shared).
SHARED_WITH_ULYSSE = ("Étiquetage erroné de palettes expédiées",
                      "Réclamation : couleur RAL non conforme sur armoires")

COMMENTS = {
    "fr": {
        "analysis": "Prise en charge : analyse des causes lancée.",
        "treatment": "Cause identifiée, actions correctives définies.",
        "verification": "Actions réalisées ; vérification de l'efficacité en cours.",
        "closed": "Efficacité constatée sur trois lots consécutifs. Clôture.",
        "reopen": "Nouveaux défauts constatés au contrôle : reprise du traitement.",
        "unfounded": "Recomptage contradictoire : 240 pièces présentes, une travée avait été "
                     "oubliée au premier comptage. Pas d'écart.",
    },
    "en": {
        "analysis": "Taken over: root-cause analysis started.",
        "treatment": "Root cause found; corrective actions defined.",
        "verification": "Actions done; checking effectiveness.",
        "closed": "Effective on three consecutive batches. Closed.",
        "reopen": "New defects found at inspection: back to treatment.",
        "unfounded": "Counted again with a witness: nothing missing. No deviation.",
    },
}

ACTIONS = {
    "fr": {
        "immediate": {
            "internal": "Isoler et trier les pièces concernées",
            "supplier": "Bloquer le lot à réception en attente de décision",
            "customer": "Informer le client et proposer un remplacement",
            "audit": "Retirer les documents périmés des postes",
        },
        "corrective": {
            "internal": "Mettre à jour la gamme et former les opérateurs",
            "supplier": "Obtenir du fournisseur un plan d'actions 8D",
            "customer": "Répondre au client avec le plan d'actions",
            "audit": "Réviser la procédure et la diffuser",
        },
        "preventive": "Étendre la vérification aux postes similaires",
        "cancelled": "Faire réaliser un contrôle à 100 % par un sous-traitant",
    },
    "en": {
        "immediate": {
            "internal": "Quarantine and sort the parts concerned",
            "supplier": "Block the batch at goods-in pending a decision",
            "customer": "Inform the customer and offer replacements",
            "audit": "Remove outdated documents from the workstations",
        },
        "corrective": {
            "internal": "Update the routing and train the operators",
            "supplier": "Get an 8D action plan from the supplier",
            "customer": "Answer the customer with the action plan",
            "audit": "Revise the procedure and circulate it",
        },
        "preventive": "Extend the check to similar workstations",
        "cancelled": "Have a subcontractor inspect 100 % of the parts",
    },
}
EFFECTIVE = {"fr": "Aucun nouveau défaut sur les trois derniers lots.",
             "en": "No new defect on the last three batches."}

# Standalone actions: title, kind, owner key, due in days (negative: overdue), status
STANDALONE = (
    ("Revue annuelle des fournisseurs critiques", "preventive", "claire", -10, "planned"),
    ("Mettre à jour l'analyse des risques du site", "preventive", "marc", 45, "in_progress"),
    ("Habilitations pont roulant : recyclage des caristes", "preventive", "marc", 15,
     "planned"),
    ("Prepare the customer audit of Nordic Pumps", "preventive", "james", -3, "in_progress"),
)
