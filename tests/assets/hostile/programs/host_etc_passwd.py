# category: host-read
# expect: {"returncode": 1, "stderr": "FileNotFoundError.*/etc/passwd"}
print(open("/etc/passwd").read())
