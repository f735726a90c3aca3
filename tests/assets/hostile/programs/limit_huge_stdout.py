# category: limits
# stdout is a file bounded by the file-size limit; only the first max_output_chars come back.
# expect: {"returncode": "nonzero", "stdout": "output truncated at 4000 characters", "stderr": "File too large"}
import sys

while True:
    sys.stdout.write("x" * 65536)
