# category: limits
# expect: {"returncode": 1, "stderr": "File too large"}
# after: {"max_file_size": "big.bin"}
open("big.bin", "wb").write(b"x" * (8 << 20))
