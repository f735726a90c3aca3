# category: host-write
# expect: {"returncode": 1, "stderr": "FileNotFoundError"}
# after: {"host_absent": ["{{canary_dir}}/{{marker}}"]}
open("{{canary_dir}}/{{marker}}", "w").write("x")
