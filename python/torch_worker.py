import json
print(json.dumps({"error": "this build has no torch worker"}), flush=True)
