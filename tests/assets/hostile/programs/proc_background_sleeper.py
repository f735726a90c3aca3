# category: process
# A detached child in its own session survives the script's exit only until the sandbox is torn down.
# expect: {"ok": true, "stdout": "spawned"}
import subprocess

subprocess.Popen(["sleep", "600"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("spawned")
