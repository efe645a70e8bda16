//! North American Numbering Plan area codes (NPAs): the time zone and the
//! state, province or territory each geographic area code serves.
//!
//! Used by the compliance gate to place a called party when the contact has
//! no time zone of its own. An area code is only a hint: numbers port and
//! phones travel, and the law keys on where the called party actually is
//! (reference/domain.md §4.3). Hence the gate prefers an explicit contact
//! time zone, and for an area code that spans several zones it requires the
//! calling window to hold in every one of them ([`other_zones_of_area_code`]).
//!
//! Coverage: every geographic area code of the 50 states, DC, the US
//! territories and Canada that we know to be in service or assigned, checked
//! against the geocoding data of libphonenumber 9.0.43. Non-geographic codes
//! (toll-free 8XX, 5XX, 900, Canada's 600-series) and the other NANP
//! countries (Caribbean, Bermuda) are deliberately absent: they resolve to
//! no zone, and the gate then refuses to contact automatically.
//!
//! Zone choice: an area code inside one zone maps to that zone's canonical
//! IANA name. An area code split across zones maps to the zone of the
//! majority of its population; the comment on the row says so and names the
//! minority, which is listed in [`AREA_CODE_OTHER_ZONES`].

/// Area code → IANA time zone of the majority of its population. Sorted by
/// area code (a test checks), looked up by binary search.
pub static AREA_CODE_ZONES: &[(u16, &str)] = &[
    (201, "America/New_York"),             // NJ
    (202, "America/New_York"),             // DC
    (203, "America/New_York"),             // CT
    (204, "America/Winnipeg"),             // MB
    (205, "America/Chicago"),              // AL
    (206, "America/Los_Angeles"),          // WA
    (207, "America/New_York"),             // ME
    (208, "America/Boise"), // ID; split: Boise and the south (Mountain) outnumber the Pacific-time panhandle
    (209, "America/Los_Angeles"), // CA
    (210, "America/Chicago"), // TX
    (212, "America/New_York"), // NY
    (213, "America/Los_Angeles"), // CA
    (214, "America/Chicago"), // TX
    (215, "America/New_York"), // PA
    (216, "America/New_York"), // OH
    (217, "America/Chicago"), // IL
    (218, "America/Chicago"), // MN
    (219, "America/Chicago"), // IN; split: Lake/Porter/LaPorte (Central, Chicago metro) hold most of it; its eastern fringe is Eastern
    (220, "America/New_York"), // OH
    (223, "America/New_York"), // PA
    (224, "America/Chicago"), // IL
    (225, "America/Chicago"), // LA
    (226, "America/Toronto"), // ON
    (227, "America/New_York"), // MD
    (228, "America/Chicago"), // MS
    (229, "America/New_York"), // GA
    (231, "America/Detroit"), // MI
    (234, "America/New_York"), // OH
    (235, "America/Chicago"), // MO
    (236, "America/Vancouver"), // BC; split: BC province-wide overlay: Pacific except the East Kootenay (Mountain)
    (239, "America/New_York"),  // FL
    (240, "America/New_York"),  // MD
    (248, "America/Detroit"),   // MI
    (249, "America/Toronto"),   // ON
    (250, "America/Vancouver"), // BC; split: Pacific except the East Kootenay (Mountain)
    (251, "America/Chicago"),   // AL
    (252, "America/New_York"),  // NC
    (253, "America/Los_Angeles"), // WA
    (254, "America/Chicago"),   // TX
    (256, "America/Chicago"),   // AL
    (257, "America/Vancouver"), // BC; split: BC province-wide overlay; same split
    (260, "America/Indiana/Indianapolis"), // IN
    (262, "America/Chicago"),   // WI
    (263, "America/Toronto"),   // QC
    (267, "America/New_York"),  // PA
    (269, "America/Detroit"),   // MI
    (270, "America/Chicago"), // KY; split: Bowling Green/Owensboro/Paducah (Central) outnumber the Elizabethtown area (Eastern)
    (272, "America/New_York"), // PA
    (273, "America/Toronto"), // QC
    (274, "America/Chicago"), // WI
    (276, "America/New_York"), // VA
    (279, "America/Los_Angeles"), // CA
    (281, "America/Chicago"), // TX
    (283, "America/New_York"), // OH
    (289, "America/Toronto"), // ON
    (301, "America/New_York"), // MD
    (302, "America/New_York"), // DE
    (303, "America/Denver"),  // CO
    (304, "America/New_York"), // WV
    (305, "America/New_York"), // FL
    (306, "America/Regina"),  // SK; split: no DST (Regina) except Lloydminster (Alberta time)
    (307, "America/Denver"),  // WY
    (308, "America/Chicago"), // NE; split: Grand Island/Kearney/North Platte (Central) outnumber the panhandle (Mountain)
    (309, "America/Chicago"), // IL
    (310, "America/Los_Angeles"), // CA
    (312, "America/Chicago"), // IL
    (313, "America/Detroit"), // MI
    (314, "America/Chicago"), // MO
    (315, "America/New_York"), // NY
    (316, "America/Chicago"), // KS
    (317, "America/Indiana/Indianapolis"), // IN
    (318, "America/Chicago"), // LA
    (319, "America/Chicago"), // IA
    (320, "America/Chicago"), // MN
    (321, "America/New_York"), // FL
    (323, "America/Los_Angeles"), // CA
    (324, "America/New_York"), // FL
    (325, "America/Chicago"), // TX
    (326, "America/New_York"), // OH
    (327, "America/Chicago"), // AR
    (329, "America/New_York"), // NY
    (330, "America/New_York"), // OH
    (331, "America/Chicago"), // IL
    (332, "America/New_York"), // NY
    (334, "America/Chicago"), // AL
    (336, "America/New_York"), // NC
    (337, "America/Chicago"), // LA
    (339, "America/New_York"), // MA
    (340, "America/St_Thomas"), // VI
    (341, "America/Los_Angeles"), // CA
    (343, "America/Toronto"), // ON
    (346, "America/Chicago"), // TX
    (347, "America/New_York"), // NY
    (350, "America/Los_Angeles"), // CA
    (351, "America/New_York"), // MA
    (352, "America/New_York"), // FL
    (353, "America/Chicago"), // WI
    (354, "America/Toronto"), // QC
    (360, "America/Los_Angeles"), // WA
    (361, "America/Chicago"), // TX
    (363, "America/New_York"), // NY
    (364, "America/Chicago"), // KY; split: overlay of 270; same split
    (365, "America/Toronto"), // ON
    (367, "America/Toronto"), // QC; split: overlay of 418; same split
    (368, "America/Edmonton"), // AB
    (369, "America/Los_Angeles"), // CA
    (380, "America/New_York"), // OH
    (382, "America/Toronto"), // ON
    (385, "America/Denver"),  // UT
    (386, "America/New_York"), // FL
    (401, "America/New_York"), // RI
    (402, "America/Chicago"), // NE; all Central (domain.md §4.3 lists 402/531 as MT/CT; the Mountain part of Nebraska is 308)
    (403, "America/Edmonton"), // AB
    (404, "America/New_York"), // GA
    (405, "America/Chicago"), // OK
    (406, "America/Denver"),  // MT
    (407, "America/New_York"), // FL
    (408, "America/Los_Angeles"), // CA
    (409, "America/Chicago"), // TX
    (410, "America/New_York"), // MD
    (412, "America/New_York"), // PA
    (413, "America/New_York"), // MA
    (414, "America/Chicago"), // WI
    (415, "America/Los_Angeles"), // CA
    (416, "America/Toronto"), // ON
    (417, "America/Chicago"), // MO
    (418, "America/Toronto"), // QC; split: Eastern except the Magdalen Islands (Atlantic)
    (419, "America/New_York"), // OH
    (423, "America/New_York"), // TN; split: Chattanooga/Tri-Cities (Eastern); Marion/Sequatchie/Bledsoe are Central
    (424, "America/Los_Angeles"), // CA
    (425, "America/Los_Angeles"), // WA
    (428, "America/Moncton"),  // NB
    (430, "America/Chicago"),  // TX
    (431, "America/Winnipeg"), // MB
    (432, "America/Chicago"),  // TX; split: Midland/Odessa (Central); Culberson County is Mountain
    (434, "America/New_York"), // VA
    (435, "America/Denver"),   // UT
    (436, "America/New_York"), // OH; newest overlay, verify against NANPA
    (437, "America/Toronto"),  // ON
    (438, "America/Toronto"),  // QC
    (440, "America/New_York"), // OH
    (442, "America/Los_Angeles"), // CA
    (443, "America/New_York"), // MD
    (445, "America/New_York"), // PA
    (447, "America/Chicago"),  // IL
    (448, "America/Chicago"),  // FL; split: overlay of 850; same split
    (450, "America/Toronto"),  // QC
    (457, "America/Chicago"),  // LA; newest overlay, verify against NANPA
    (458, "America/Los_Angeles"), // OR; split: Pacific except Malheur County (Mountain)
    (463, "America/Indiana/Indianapolis"), // IN
    (464, "America/Chicago"),  // IL
    (468, "America/Toronto"),  // QC
    (469, "America/Chicago"),  // TX
    (470, "America/New_York"), // GA
    (472, "America/New_York"), // NC
    (474, "America/Regina"),   // SK; split: overlay of 306; same split
    (475, "America/New_York"), // CT
    (478, "America/New_York"), // GA
    (479, "America/Chicago"),  // AR
    (480, "America/Phoenix"),  // AZ
    (484, "America/New_York"), // PA
    (501, "America/Chicago"),  // AR
    (502, "America/Kentucky/Louisville"), // KY
    (503, "America/Los_Angeles"), // OR
    (504, "America/Chicago"),  // LA
    (505, "America/Denver"),   // NM
    (506, "America/Moncton"),  // NB
    (507, "America/Chicago"),  // MN
    (508, "America/New_York"), // MA
    (509, "America/Los_Angeles"), // WA
    (510, "America/Los_Angeles"), // CA
    (512, "America/Chicago"),  // TX
    (513, "America/New_York"), // OH
    (514, "America/Toronto"),  // QC
    (515, "America/Chicago"),  // IA
    (516, "America/New_York"), // NY
    (517, "America/Detroit"),  // MI
    (518, "America/New_York"), // NY
    (519, "America/Toronto"),  // ON
    (520, "America/Phoenix"),  // AZ
    (530, "America/Los_Angeles"), // CA
    (531, "America/Chicago"),  // NE; overlay of 402, all Central
    (534, "America/Chicago"),  // WI
    (539, "America/Chicago"),  // OK
    (540, "America/New_York"), // VA
    (541, "America/Los_Angeles"), // OR; split: Pacific except Malheur County (Mountain)
    (548, "America/Toronto"),  // ON
    (551, "America/New_York"), // NJ
    (557, "America/Chicago"),  // MO
    (559, "America/Los_Angeles"), // CA
    (561, "America/New_York"), // FL
    (562, "America/Los_Angeles"), // CA
    (563, "America/Chicago"),  // IA
    (564, "America/Los_Angeles"), // WA
    (567, "America/New_York"), // OH
    (570, "America/New_York"), // PA
    (571, "America/New_York"), // VA
    (572, "America/Chicago"),  // OK
    (573, "America/Chicago"),  // MO
    (574, "America/Indiana/Indianapolis"), // IN; split: South Bend/Elkhart (Eastern); Starke County is Central
    (575, "America/Denver"),               // NM
    (579, "America/Toronto"),              // QC
    (580, "America/Chicago"),              // OK
    (581, "America/Toronto"),              // QC; split: overlay of 418; same split
    (582, "America/New_York"),             // PA
    (584, "America/Winnipeg"),             // MB
    (585, "America/New_York"),             // NY
    (586, "America/Detroit"),              // MI
    (587, "America/Edmonton"),             // AB
    (601, "America/Chicago"),              // MS
    (602, "America/Phoenix"),              // AZ
    (603, "America/New_York"),             // NH
    (604, "America/Vancouver"),            // BC
    (605, "America/Chicago"), // SD; split: Sioux Falls/east river (Central) outnumber west river/Rapid City (Mountain)
    (606, "America/New_York"), // KY; split: eastern KY is Eastern; a few south-central counties are Central
    (607, "America/New_York"), // NY
    (608, "America/Chicago"),  // WI
    (609, "America/New_York"), // NJ
    (610, "America/New_York"), // PA
    (612, "America/Chicago"),  // MN
    (613, "America/Toronto"),  // ON
    (614, "America/New_York"), // OH
    (615, "America/Chicago"),  // TN
    (616, "America/Detroit"),  // MI
    (617, "America/New_York"), // MA
    (618, "America/Chicago"),  // IL
    (619, "America/Los_Angeles"), // CA
    (620, "America/Chicago"),  // KS; split: all but a few western counties (Mountain) are Central
    (623, "America/Phoenix"),  // AZ
    (624, "America/New_York"), // NY; newest overlay, verify against NANPA
    (626, "America/Los_Angeles"), // CA
    (628, "America/Los_Angeles"), // CA
    (629, "America/Chicago"),  // TN
    (630, "America/Chicago"),  // IL
    (631, "America/New_York"), // NY
    (636, "America/Chicago"),  // MO
    (639, "America/Regina"),   // SK; split: overlay of 306; same split
    (640, "America/New_York"), // NJ
    (641, "America/Chicago"),  // IA
    (645, "America/New_York"), // FL
    (646, "America/New_York"), // NY
    (647, "America/Toronto"),  // ON
    (650, "America/Los_Angeles"), // CA
    (651, "America/Chicago"),  // MN
    (656, "America/New_York"), // FL
    (657, "America/Los_Angeles"), // CA
    (659, "America/Chicago"),  // AL
    (660, "America/Chicago"),  // MO
    (661, "America/Los_Angeles"), // CA
    (662, "America/Chicago"),  // MS
    (667, "America/New_York"), // MD
    (669, "America/Los_Angeles"), // CA
    (670, "Pacific/Saipan"),   // MP
    (671, "Pacific/Guam"),     // GU
    (672, "America/Vancouver"), // BC; split: BC province-wide overlay; same split
    (678, "America/New_York"), // GA
    (679, "America/Detroit"), // MI; overlay of 313 (Detroit), all Eastern despite domain.md §4.3 listing it as CT/ET; newest overlay, verify against NANPA
    (680, "America/New_York"), // NY
    (681, "America/New_York"), // WV
    (682, "America/Chicago"), // TX
    (683, "America/Toronto"), // ON
    (684, "Pacific/Pago_Pago"), // AS
    (686, "America/New_York"), // VA
    (689, "America/New_York"), // FL
    (701, "America/Chicago"), // ND; split: Central except the south-west (Mountain)
    (702, "America/Los_Angeles"), // NV
    (703, "America/New_York"), // VA
    (704, "America/New_York"), // NC
    (705, "America/Toronto"), // ON
    (706, "America/New_York"), // GA
    (707, "America/Los_Angeles"), // CA
    (708, "America/Chicago"), // IL
    (709, "America/St_Johns"), // NL; split: the island (Newfoundland time) outnumbers Labrador (Atlantic)
    (712, "America/Chicago"),  // IA
    (713, "America/Chicago"),  // TX
    (714, "America/Los_Angeles"), // CA
    (715, "America/Chicago"),  // WI
    (716, "America/New_York"), // NY
    (717, "America/New_York"), // PA
    (718, "America/New_York"), // NY
    (719, "America/Denver"),   // CO
    (720, "America/Denver"),   // CO
    (724, "America/New_York"), // PA
    (725, "America/Los_Angeles"), // NV
    (726, "America/Chicago"),  // TX
    (727, "America/New_York"), // FL
    (728, "America/New_York"), // FL
    (730, "America/Chicago"),  // IL
    (731, "America/Chicago"),  // TN
    (732, "America/New_York"), // NJ
    (734, "America/Detroit"),  // MI
    (737, "America/Chicago"),  // TX
    (738, "America/Los_Angeles"), // CA
    (740, "America/New_York"), // OH
    (742, "America/Toronto"),  // ON
    (743, "America/New_York"), // NC
    (747, "America/Los_Angeles"), // CA
    (748, "America/Denver"),   // CO
    (753, "America/Toronto"),  // ON
    (754, "America/New_York"), // FL
    (757, "America/New_York"), // VA
    (760, "America/Los_Angeles"), // CA
    (762, "America/New_York"), // GA
    (763, "America/Chicago"),  // MN
    (765, "America/Indiana/Indianapolis"), // IN
    (769, "America/Chicago"),  // MS
    (770, "America/New_York"), // GA
    (771, "America/New_York"), // DC
    (772, "America/New_York"), // FL
    (773, "America/Chicago"),  // IL
    (774, "America/New_York"), // MA
    (775, "America/Los_Angeles"), // NV; split: Pacific except West Wendover and Jackpot (Mountain)
    (778, "America/Vancouver"), // BC; split: BC province-wide overlay; same split
    (779, "America/Chicago"),  // IL
    (780, "America/Edmonton"), // AB
    (781, "America/New_York"), // MA
    (782, "America/Halifax"),  // NS
    (785, "America/Chicago"),  // KS; split: all but Sherman/Wallace counties (Mountain) are Central
    (786, "America/New_York"), // FL
    (787, "America/Puerto_Rico"), // PR
    (801, "America/Denver"),   // UT
    (802, "America/New_York"), // VT
    (803, "America/New_York"), // SC
    (804, "America/New_York"), // VA
    (805, "America/Los_Angeles"), // CA
    (806, "America/Chicago"),  // TX
    (807, "America/Toronto"), // ON; split: ON north-west: Thunder Bay (Eastern) outnumbers Kenora (Central)
    (808, "Pacific/Honolulu"), // HI
    (810, "America/Detroit"), // MI
    (812, "America/Indiana/Indianapolis"), // IN; split: Bloomington/Columbus/Louisville suburbs (Eastern) outnumber the Evansville corner (Central)
    (813, "America/New_York"),             // FL
    (814, "America/New_York"),             // PA
    (815, "America/Chicago"),              // IL
    (816, "America/Chicago"),              // MO
    (817, "America/Chicago"),              // TX
    (818, "America/Los_Angeles"),          // CA
    (819, "America/Toronto"),              // QC
    (820, "America/Los_Angeles"),          // CA
    (821, "America/New_York"),             // SC
    (825, "America/Edmonton"),             // AB
    (826, "America/New_York"),             // VA
    (828, "America/New_York"),             // NC
    (830, "America/Chicago"),              // TX
    (831, "America/Los_Angeles"),          // CA
    (832, "America/Chicago"),              // TX
    (835, "America/New_York"),             // PA
    (838, "America/New_York"),             // NY
    (839, "America/New_York"),             // SC
    (840, "America/Los_Angeles"),          // CA
    (843, "America/New_York"),             // SC
    (845, "America/New_York"),             // NY
    (847, "America/Chicago"),              // IL
    (848, "America/New_York"),             // NJ
    (850, "America/Chicago"), // FL; split: Pensacola/Panama City (Central) outnumber Tallahassee (Eastern)
    (854, "America/New_York"), // SC
    (856, "America/New_York"), // NJ
    (857, "America/New_York"), // MA
    (858, "America/Los_Angeles"), // CA
    (859, "America/New_York"), // KY
    (860, "America/New_York"), // CT
    (861, "America/Chicago"), // IL; newest overlay, verify against NANPA
    (862, "America/New_York"), // NJ
    (863, "America/New_York"), // FL
    (864, "America/New_York"), // SC
    (865, "America/New_York"), // TN
    (867, "America/Whitehorse"), // YT; split, no majority: Yukon (permanent UTC-7) is the largest; NWT is Mountain, Nunavut spans Mountain/Central/Eastern
    (870, "America/Chicago"),    // AR
    (872, "America/Chicago"),    // IL
    (873, "America/Toronto"),    // QC
    (878, "America/New_York"),   // PA
    (879, "America/St_Johns"),   // NL; split: overlay of 709; same split
    (901, "America/Chicago"),    // TN
    (902, "America/Halifax"),    // NS
    (903, "America/Chicago"),    // TX
    (904, "America/New_York"),   // FL
    (905, "America/Toronto"),    // ON
    (906, "America/Detroit"), // MI; split: Eastern except four counties on the Wisconsin line (Central)
    (907, "America/Anchorage"), // AK; split: Alaska time except the western Aleutians (Hawaii-Aleutian time)
    (908, "America/New_York"),  // NJ
    (909, "America/Los_Angeles"), // CA
    (910, "America/New_York"),  // NC
    (912, "America/New_York"),  // GA
    (913, "America/Chicago"),   // KS
    (914, "America/New_York"),  // NY
    (915, "America/Denver"),    // TX
    (916, "America/Los_Angeles"), // CA
    (917, "America/New_York"),  // NY
    (918, "America/Chicago"),   // OK
    (919, "America/New_York"),  // NC
    (920, "America/Chicago"),   // WI
    (924, "America/Chicago"),   // MN; newest overlay, verify against NANPA
    (925, "America/Los_Angeles"), // CA
    (928, "America/Phoenix"), // AZ; split: no DST (Phoenix) except the Navajo Nation, which observes DST (Denver)
    (929, "America/New_York"), // NY
    (930, "America/Indiana/Indianapolis"), // IN; split: overlay of 812; same split
    (931, "America/Chicago"), // TN; split: Central except the Cumberland Plateau counties (Eastern)
    (934, "America/New_York"), // NY
    (936, "America/Chicago"), // TX
    (937, "America/New_York"), // OH
    (938, "America/Chicago"), // AL
    (939, "America/Puerto_Rico"), // PR
    (940, "America/Chicago"), // TX
    (941, "America/New_York"), // FL
    (942, "America/Toronto"), // ON
    (943, "America/New_York"), // GA
    (945, "America/Chicago"), // TX
    (947, "America/Detroit"), // MI; overlay of 248 (Oakland County), all Eastern despite domain.md §4.3 listing it as CT/ET
    (948, "America/New_York"), // VA
    (949, "America/Los_Angeles"), // CA
    (951, "America/Los_Angeles"), // CA
    (952, "America/Chicago"), // MN
    (954, "America/New_York"), // FL
    (956, "America/Chicago"), // TX
    (959, "America/New_York"), // CT
    (970, "America/Denver"),  // CO
    (971, "America/Los_Angeles"), // OR
    (972, "America/Chicago"), // TX
    (973, "America/New_York"), // NJ
    (975, "America/Chicago"), // MO
    (978, "America/New_York"), // MA
    (979, "America/Chicago"), // TX
    (980, "America/New_York"), // NC
    (983, "America/Denver"),  // CO
    (984, "America/New_York"), // NC
    (985, "America/Chicago"), // LA
    (986, "America/Boise"),   // ID; split: overlay of 208; same split
    (989, "America/Detroit"), // MI
];

/// Area code → its minority zones, for the area codes split across zones.
/// Sorted by area code.
pub static AREA_CODE_OTHER_ZONES: &[(u16, &[&str])] = &[
    (208, &["America/Los_Angeles"]),
    (219, &["America/Indiana/Indianapolis"]),
    (236, &["America/Edmonton"]),
    (250, &["America/Edmonton"]),
    (257, &["America/Edmonton"]),
    (270, &["America/New_York"]),
    (306, &["America/Edmonton"]),
    (308, &["America/Denver"]),
    (364, &["America/New_York"]),
    (367, &["America/Halifax"]),
    (418, &["America/Halifax"]),
    (423, &["America/Chicago"]),
    (432, &["America/Denver"]),
    (448, &["America/New_York"]),
    (458, &["America/Boise"]),
    (474, &["America/Edmonton"]),
    (541, &["America/Boise"]),
    (574, &["America/Chicago"]),
    (581, &["America/Halifax"]),
    (605, &["America/Denver"]),
    (606, &["America/Chicago"]),
    (620, &["America/Denver"]),
    (639, &["America/Edmonton"]),
    (672, &["America/Edmonton"]),
    (701, &["America/Denver"]),
    (709, &["America/Goose_Bay"]),
    (775, &["America/Denver"]),
    (778, &["America/Edmonton"]),
    (785, &["America/Denver"]),
    (807, &["America/Winnipeg"]),
    (812, &["America/Chicago"]),
    (850, &["America/New_York"]),
    (
        867,
        &["America/Edmonton", "America/Winnipeg", "America/Toronto"],
    ),
    (879, &["America/Goose_Bay"]),
    (906, &["America/Menominee"]),
    (907, &["America/Adak"]),
    (928, &["America/Denver"]),
    (930, &["America/Chicago"]),
    (931, &["America/New_York"]),
    (986, &["America/Los_Angeles"]),
];

/// Region (USPS state/territory or Canadian province code) → its area codes.
static REGION_AREA_CODES: &[(&str, &[u16])] = &[
    ("AL", &[205, 251, 256, 334, 659, 938]), // Alabama
    ("AK", &[907]),                          // Alaska
    ("AZ", &[480, 520, 602, 623, 928]),      // Arizona
    ("AR", &[327, 479, 501, 870]),           // Arkansas
    (
        "CA",
        &[
            209, 213, 279, 310, 323, 341, 350, 369, 408, 415, 424, 442, 510, 530, 559, 562, 619,
            626, 628, 650, 657, 661, 669, 707, 714, 738, 747, 760, 805, 818, 820, 831, 840, 858,
            909, 916, 925, 949, 951,
        ],
    ), // California
    ("CO", &[303, 719, 720, 748, 970, 983]), // Colorado
    ("CT", &[203, 475, 860, 959]),           // Connecticut
    ("DE", &[302]),                          // Delaware
    ("DC", &[202, 771]),                     // District of Columbia
    (
        "FL",
        &[
            239, 305, 321, 324, 352, 386, 407, 448, 561, 645, 656, 689, 727, 728, 754, 772, 786,
            813, 850, 863, 904, 941, 954,
        ],
    ), // Florida
    ("GA", &[229, 404, 470, 478, 678, 706, 762, 770, 912, 943]), // Georgia
    ("HI", &[808]),                          // Hawaii
    ("ID", &[208, 986]),                     // Idaho
    (
        "IL",
        &[
            217, 224, 309, 312, 331, 447, 464, 618, 630, 708, 730, 773, 779, 815, 847, 861, 872,
        ],
    ), // Illinois
    ("IN", &[219, 260, 317, 463, 574, 765, 812, 930]), // Indiana
    ("IA", &[319, 515, 563, 641, 712]),      // Iowa
    ("KS", &[316, 620, 785, 913]),           // Kansas
    ("KY", &[270, 364, 502, 606, 859]),      // Kentucky
    ("LA", &[225, 318, 337, 457, 504, 985]), // Louisiana
    ("ME", &[207]),                          // Maine
    ("MD", &[227, 240, 301, 410, 443, 667]), // Maryland
    ("MA", &[339, 351, 413, 508, 617, 774, 781, 857, 978]), // Massachusetts
    (
        "MI",
        &[
            231, 248, 269, 313, 517, 586, 616, 679, 734, 810, 906, 947, 989,
        ],
    ), // Michigan
    ("MN", &[218, 320, 507, 612, 651, 763, 924, 952]), // Minnesota
    ("MS", &[228, 601, 662, 769]),           // Mississippi
    ("MO", &[235, 314, 417, 557, 573, 636, 660, 816, 975]), // Missouri
    ("MT", &[406]),                          // Montana
    ("NE", &[308, 402, 531]),                // Nebraska
    ("NV", &[702, 725, 775]),                // Nevada
    ("NH", &[603]),                          // New Hampshire
    ("NJ", &[201, 551, 609, 640, 732, 848, 856, 862, 908, 973]), // New Jersey
    ("NM", &[505, 575]),                     // New Mexico
    (
        "NY",
        &[
            212, 315, 329, 332, 347, 363, 516, 518, 585, 607, 624, 631, 646, 680, 716, 718, 838,
            845, 914, 917, 929, 934,
        ],
    ), // New York
    ("NC", &[252, 336, 472, 704, 743, 828, 910, 919, 980, 984]), // North Carolina
    ("ND", &[701]),                          // North Dakota
    (
        "OH",
        &[
            216, 220, 234, 283, 326, 330, 380, 419, 436, 440, 513, 567, 614, 740, 937,
        ],
    ), // Ohio
    ("OK", &[405, 539, 572, 580, 918]),      // Oklahoma
    ("OR", &[458, 503, 541, 971]),           // Oregon
    (
        "PA",
        &[
            215, 223, 267, 272, 412, 445, 484, 570, 582, 610, 717, 724, 814, 835, 878,
        ],
    ), // Pennsylvania
    ("RI", &[401]),                          // Rhode Island
    ("SC", &[803, 821, 839, 843, 854, 864]), // South Carolina
    ("SD", &[605]),                          // South Dakota
    ("TN", &[423, 615, 629, 731, 865, 901, 931]), // Tennessee
    (
        "TX",
        &[
            210, 214, 254, 281, 325, 346, 361, 409, 430, 432, 469, 512, 682, 713, 726, 737, 806,
            817, 830, 832, 903, 915, 936, 940, 945, 956, 972, 979,
        ],
    ), // Texas
    ("UT", &[385, 435, 801]),                // Utah
    ("VT", &[802]),                          // Vermont
    ("VA", &[276, 434, 540, 571, 686, 703, 757, 804, 826, 948]), // Virginia
    ("WA", &[206, 253, 360, 425, 509, 564]), // Washington
    ("WV", &[304, 681]),                     // West Virginia
    ("WI", &[262, 274, 353, 414, 534, 608, 715, 920]), // Wisconsin
    ("WY", &[307]),                          // Wyoming
    ("PR", &[787, 939]),                     // Puerto Rico
    ("VI", &[340]),                          // US Virgin Islands
    ("GU", &[671]),                          // Guam
    ("MP", &[670]),                          // Northern Mariana Islands
    ("AS", &[684]),                          // American Samoa
    ("BC", &[236, 250, 257, 604, 672, 778]), // British Columbia
    ("AB", &[368, 403, 587, 780, 825]),      // Alberta
    ("SK", &[306, 474, 639]),                // Saskatchewan
    ("MB", &[204, 431, 584]),                // Manitoba
    (
        "ON",
        &[
            226, 249, 289, 343, 365, 382, 416, 437, 519, 548, 613, 647, 683, 705, 742, 753, 807,
            905, 942,
        ],
    ), // Ontario
    (
        "QC",
        &[
            263, 273, 354, 367, 418, 438, 450, 468, 514, 579, 581, 819, 873,
        ],
    ), // Quebec
    ("NB", &[428, 506]),                     // New Brunswick
    ("NS", &[782, 902]),                     // Nova Scotia (and Prince Edward Island)
    ("NL", &[709, 879]),                     // Newfoundland and Labrador
    ("YT", &[867]),                          // Yukon (and Northwest Territories, Nunavut)
];

/// The area code of an E.164 NANP number: `+1`, then a ten-digit number
/// whose area code and exchange both start with 2–9. Anything else, including
/// numbers of other countries and unformatted input, has no area code.
pub fn area_code(phone: &str) -> Option<u16> {
    let digits = phone.strip_prefix("+1")?.as_bytes();
    if digits.len() != 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits[0] < b'2' || digits[3] < b'2' {
        return None;
    }
    let npa = digits[..3]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    Some(npa)
}

/// The IANA zone of the majority of the area code's population.
pub fn zone_of_area_code(npa: u16) -> Option<&'static str> {
    AREA_CODE_ZONES
        .binary_search_by_key(&npa, |&(code, _)| code)
        .ok()
        .map(|i| AREA_CODE_ZONES[i].1)
}

/// The minority zones of an area code split across zones; empty for an area
/// code inside one zone (or an unknown one).
pub fn other_zones_of_area_code(npa: u16) -> &'static [&'static str] {
    AREA_CODE_OTHER_ZONES
        .binary_search_by_key(&npa, |&(code, _)| code)
        .map_or(&[], |i| AREA_CODE_OTHER_ZONES[i].1)
}

/// The two-letter USPS state/territory or Canadian province code the area
/// code serves.
pub fn state_of_area_code(npa: u16) -> Option<&'static str> {
    REGION_AREA_CODES
        .iter()
        .find(|(_, codes)| codes.contains(&npa))
        .map(|&(region, _)| region)
}

/// Whether `code` is a region of [`state_of_area_code`] (used to reject typos
/// in configured state rules).
pub fn is_known_region(code: &str) -> bool {
    REGION_AREA_CODES.iter().any(|&(region, _)| region == code)
}

/// Whether the region is a Canadian province or territory (where the CRTC's
/// rules, not the TCPA's, apply).
pub fn is_canadian_region(code: &str) -> bool {
    CANADIAN_REGIONS.contains(&code)
}

const CANADIAN_REGIONS: &[&str] = &["AB", "BC", "MB", "NB", "NL", "NS", "ON", "QC", "SK", "YT"];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono_tz::Tz;

    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for pair in AREA_CODE_ZONES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} then {:?}", pair[0], pair[1]);
        }
        for pair in AREA_CODE_OTHER_ZONES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} then {}", pair[0].0, pair[1].0);
        }
        let mut seen = BTreeSet::new();
        for (region, codes) in REGION_AREA_CODES {
            assert_eq!(region.len(), 2, "{region}");
            for code in *codes {
                assert!(
                    seen.insert(*code),
                    "{code} listed twice (again under {region})"
                );
            }
        }
    }

    #[test]
    fn zone_and_region_tables_cover_the_same_area_codes() {
        let zoned: BTreeSet<u16> = AREA_CODE_ZONES.iter().map(|&(c, _)| c).collect();
        let placed: BTreeSet<u16> = REGION_AREA_CODES
            .iter()
            .flat_map(|(_, codes)| codes.iter().copied())
            .collect();
        assert_eq!(zoned, placed);
        assert!(zoned.len() > 400, "{}", zoned.len());
        for (code, _) in AREA_CODE_OTHER_ZONES {
            assert!(zoned.contains(code), "split {code} has no primary zone");
        }
        for code in &zoned {
            assert!((200..1000).contains(code), "{code}");
        }
    }

    #[test]
    fn every_zone_name_is_a_valid_iana_zone() {
        let all = AREA_CODE_ZONES.iter().map(|&(_, z)| z).chain(
            AREA_CODE_OTHER_ZONES
                .iter()
                .flat_map(|(_, zs)| zs.iter().copied()),
        );
        for zone in all {
            assert!(zone.parse::<Tz>().is_ok(), "{zone}");
        }
        for (code, others) in AREA_CODE_OTHER_ZONES {
            assert!(!others.is_empty(), "{code}");
            assert!(!others.contains(&zone_of_area_code(*code).unwrap_or_default()));
        }
    }

    #[test]
    fn well_known_area_codes() {
        let cases = [
            (212, "America/New_York", "NY"),
            (213, "America/Los_Angeles", "CA"),
            (305, "America/New_York", "FL"),
            (312, "America/Chicago", "IL"),
            (303, "America/Denver", "CO"),
            (602, "America/Phoenix", "AZ"),
            (808, "Pacific/Honolulu", "HI"),
            (907, "America/Anchorage", "AK"),
            (915, "America/Denver", "TX"),
            (850, "America/Chicago", "FL"),
            (865, "America/New_York", "TN"),
            (615, "America/Chicago", "TN"),
            (317, "America/Indiana/Indianapolis", "IN"),
            (219, "America/Chicago", "IN"),
            (313, "America/Detroit", "MI"),
            (405, "America/Chicago", "OK"),
            (410, "America/New_York", "MD"),
            (787, "America/Puerto_Rico", "PR"),
            (671, "Pacific/Guam", "GU"),
            (416, "America/Toronto", "ON"),
            (604, "America/Vancouver", "BC"),
            (306, "America/Regina", "SK"),
            (709, "America/St_Johns", "NL"),
        ];
        for (code, zone, region) in cases {
            assert_eq!(zone_of_area_code(code), Some(zone), "{code}");
            assert_eq!(state_of_area_code(code), Some(region), "{code}");
        }
        assert_eq!(other_zones_of_area_code(850), &["America/New_York"]);
        assert!(other_zones_of_area_code(212).is_empty());
        assert!(is_canadian_region("ON") && !is_canadian_region("OR"));
        assert!(is_known_region("FL") && !is_known_region("XX"));
    }

    #[test]
    fn non_geographic_and_foreign_codes_are_unknown() {
        for code in [800, 888, 877, 500, 900, 600, 876, 441, 809, 555, 111] {
            assert_eq!(zone_of_area_code(code), None, "{code}");
            assert_eq!(state_of_area_code(code), None, "{code}");
        }
    }

    #[test]
    fn area_code_parsing() {
        assert_eq!(area_code("+14155550100"), Some(415));
        assert_eq!(area_code("+12125550100"), Some(212));
        for bad in [
            "",
            "+1",
            "14155550100",
            "+1415555010",
            "+141555501000",
            "+1 415 555 0100",
            "+1415555010x",
            "+11155550100",
            "+14150550100",
            "+14151550100",
            "+442071838750",
            "+524155550100",
        ] {
            assert_eq!(area_code(bad), None, "{bad:?}");
        }
    }
}
