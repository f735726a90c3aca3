# category: limits
# Arbitrary bytes on stdout come back decoded with replacement characters, not as an exception.
# expect: {"ok": true, "stdout": "\ufffd"}
import sys

sys.stdout.buffer.write(bytes(range(256)) * 10)
