# category: exit
# A normal exit with status 152 (= 128 + SIGXCPU) is not a CPU limit.
# expect: {"returncode": 152, "limit": null}
# xfail: under bwrap an exit status above 128 is read as 'killed by signal (status - 128)', so a program can make RunResult.limit claim a CPU limit (or any other) it never hit
import sys

sys.exit(152)
