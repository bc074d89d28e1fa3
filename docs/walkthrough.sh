#!/usr/bin/env bash
# The office's side of the story, step by step, against a running
# `clearance demo` (or serve) on 127.0.0.1:8080: register a model, file the
# lab's evidence, draft a prohibition, have a second person approve and
# publish it, see the mail, and look the phone up. Run it from the folder
# the server runs in (it mints tokens with the same data directory).
set -euo pipefail
BASE="${BASE:-http://127.0.0.1:8080}"
clearance="${CLEARANCE:-cargo run -q --release --}"
token() { $clearance token --role "$1" --sub "$2" --email "$2@example.org" --name "$2"; }
ANALYST=$(token analyst ana)
APPROVER=$(token approver bob)
ADMIN=$(token admin ada)
id() { python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'; }
post() { curl -sf -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$3" "$BASE$2"; }

# 1. Register the maker and the model, with the TAC that identifies it.
MAKER=$(post "$ANALYST" /api/v1/manufacturers '{"name": "Fairphone", "country": "NL", "aliases": []}' | id)
MODEL=$(post "$ANALYST" /api/v1/models "{\"manufacturer_id\": \"$MAKER\", \"name\": \"Fairphone 2\",
  \"category\": \"phone\", \"model_numbers\": [\"FP2\"], \"aliases\": [], \"tacs\": [\"35123406\"]}" | id)

# 2. File what the lab found.
EVIDENCE=$(post "$ANALYST" /api/v1/evidence "{\"model_ids\": [\"$MODEL\"], \"title\": \"FP2 beacons its IMEI\",
  \"source\": \"Office test lab\", \"kind\": \"lab_test\", \"observed_at\": \"2026-11-01T00:00:00Z\",
  \"summary\": \"The stock firmware sends the IMEI to an update server in clear text.\", \"severity\": \"medium\",
  \"findings\": [{\"data\": \"imei\", \"destination\": \"updates.example.net\", \"country\": \"NL\",
                 \"encrypted\": false, \"consent\": \"no\"}], \"references\": []}" | id)

# 3. Draft a decision: restricted before firmware 2.1, approved from it.
ADVISORY=$(post "$ANALYST" /api/v1/advisories "{\"title\": \"Fairphone 2: update to firmware 2.1\",
  \"summary\": \"Restricted until the firmware is updated.\", \"severity\": \"medium\", \"tlp\": \"clear\",
  \"decisions\": [{\"model_id\": \"$MODEL\", \"decision\": \"restricted\", \"firmware\": \"<2.1\",
                   \"conditions\": \"no official accounts\"},
                  {\"model_id\": \"$MODEL\", \"decision\": \"approved\", \"firmware\": \">=2.1\"}],
  \"evidence_ids\": [\"$EVIDENCE\"]}" | id)

# 4. Submit (the author), approve and publish (a second person: the
#    author's own approval would be refused with 403).
post "$ANALYST" "/api/v1/advisories/$ADVISORY/submit" '{}' >/dev/null
post "$APPROVER" "/api/v1/advisories/$ADVISORY/approve" '{}' >/dev/null
post "$APPROVER" "/api/v1/advisories/$ADVISORY/publish" '{}' | python3 -c \
  'import json, sys; a = json.load(sys.stdin); print("published", a["reference"], a["state"])'

# 5. The mail: who it went to (the files are in ./mail on the embedded defaults).
sleep 2
curl -sf -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/advisories/$ADVISORY/deliveries" | python3 -c \
  'import json, sys; print("mail:", json.load(sys.stdin)["summary"])'

# 6. The lookup, as an officer would ask it (or open $BASE/lookup?q=FP2).
curl -sf "$BASE/api/v1/lookup?q=fp2&firmware=2.0" | python3 -c \
  'import json, sys; m = json.load(sys.stdin)["matches"][0]; print("firmware 2.0:", m["clearance"]["status"])'
curl -sf "$BASE/api/v1/lookup?q=fp2&firmware=2.1" | python3 -c \
  'import json, sys; m = json.load(sys.stdin)["matches"][0]; print("firmware 2.1:", m["clearance"]["status"])'
