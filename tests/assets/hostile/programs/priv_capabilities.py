# category: privilege
# expect: {"ok": true, "stdout": "CapEff:\\s+0+\\s+CapBnd:\\s+0+\\s"}
for line in open("/proc/self/status"):
    if line.startswith(("CapEff", "CapBnd")):
        print(line.strip())
