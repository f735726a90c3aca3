# category: network
# expect: {"returncode": 1, "stderr": "gaierror"}
import socket

print(socket.getaddrinfo("example.com", 443))
