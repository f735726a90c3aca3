# category: env-leak
# The environment is rebuilt from scratch: the test process's secret variable is not inherited.
# expect: {"ok": true, "stdout": "^\\['HOME', 'LANG', 'PATH', ('PWD', )?'PYTHONDONTWRITEBYTECODE'\\]", "stdout_not": "AL_SANDBOX_TEST"}
import os

print(sorted(os.environ))
print(dict(os.environ))
print(open("/proc/self/environ", "rb").read())
