# category: host-read
# Other rollouts' workspaces live in a host temp folder: invisible here.
# expect: {"ok": true, "stdout": "^\\[\\]\\s*$"}
import glob

print(glob.glob("/tmp/agent-lightning-ws-*") + glob.glob("/tmp/*/ws-*") + glob.glob("/workspace/../tmp/*"))
