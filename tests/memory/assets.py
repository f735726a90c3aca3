"""Source files of the small corpus the memory tests index."""

PY_TOOLS = '''"""Tool-call helpers."""
import json


def parse_tool_call(text):
    """Parse a tool call written as JSON between <tool_call> tags."""
    body = text.split("<tool_call>")[1].split("</tool_call>")[0]
    return json.loads(body)


class Inventory:
    """Items in a warehouse with their counts."""

    def __init__(self):
        self.items = {}

    def add_item(self, name, count=1):
        """Add `count` units of an item."""
        self.items[name] = self.items.get(name, 0) + count

    def total_units(self):
        """Sum of all counts."""
        return sum(self.items.values())
'''

PY_MATH = '''def fibonacci(n):
    """Return the n-th Fibonacci number, iteratively."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def is_prime(n):
    """True when n is a prime number."""
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n ** 0.5) + 1))
'''

JS_UTIL = '''/** Format a price in euros with two decimals. */
export function formatPrice(cents) {
  return (cents / 100).toFixed(2) + " EUR";
}

class Cart {
  // add a product line to the cart
  addLine(product, quantity) {
    this.lines.push({ product, quantity });
  }
}
'''

README = "# Shop\n\nA demo shop.\n\n## Deploy\n\nRun `make deploy` to push the site to the staging server.\n"
