"""Word pools of the `filesystem` environment, their train/dev/test split, and `Draw`: names and text for one task.

Every file name, folder name and line of content a task holds is drawn from one split's pool, and the pools are
disjoint, so no two splits share a name or a line:

    draw = Draw(random.Random("seed"), POOLS["test"])
    draw.file(draw.folder(), ".md")      # "feather/mango.md"
    draw.text()                          # "piano tulle banjo\nhoney radish moss saffron\n..." (2-5 lines)

A word's split is fixed by a stable hash (zlib.crc32) of the word itself, so adding words to WORDS moves no
word to the other split (but does change what a seed draws). The dev split's pool, DEV_WORDS, is a separate list
of words in neither of those (and neither inside nor around one of them), matched to the test pool's token counts
under the default policy's tokenizer (74 words of one token, 31 of two, 5 of three; test: the same), so dev tasks
are as unseen in training as test tasks are. Not covered: what each template draws (see the
tier modules beside this one) and the size cap of a split (MAX_TASKS, in the package's __init__.py).
"""

from __future__ import annotations

import random
import zlib

from agent_lightning.envs import SPLITS

WORDS = tuple(dict.fromkeys("""
    apple river stone cloud maple tiger lemon piano rocket garden silver candle planet forest window yellow
    orange purple violet copper marble spider dragon rabbit falcon winter summer autumn spring harbor island
    valley meadow canyon desert glacier breeze thunder shadow mirror ladder basket pencil acorn almond anchor
    anthem arrow aspen badger bakery balcony bamboo banner barley barrel beacon beetle berry bishop blanket
    blossom bonnet border bottle boulder bracket branch bread bridge bronze brook bucket buffalo bundle butter
    button cabin cactus camel canal canvas carpet carrot castle cedar cellar cereal chalk cherry chestnut
    chimney cider cinder circle citrus clover cobalt coconut comet compass coral cotton cradle crater crayon
    cricket crystal cushion cypress daisy dolphin donkey dune eagle ember emerald engine fable feather fence
    fern ferry fiddle fig flame flannel flute fossil fountain freckle frost garlic garnet ginger giraffe goblet
    gondola gourd granite grape gravel guitar gull hammer hamster harvest hazel heron hickory hollow honey
    hornet iris ivory jacket jasmine jelly jigsaw juniper kettle kitten koala lagoon lantern larch lava
    lilac linen lizard lobster locket lotus lumber magnet mango mantle maple marsh meadowlark melon mint
    mitten mosaic moss muffin mustard nectar needle nickel nutmeg oak oasis oatmeal ocean olive onion opal
    orchard orchid otter owl oyster paddle pagoda panda panther paper parrot pasta peach peanut pearl pebble
    pelican pepper pepperoni petal pewter pickle pigeon pillow pine pirate plum pocket pollen pony poppy
    porch potato pottery prairie pretzel puffin pumpkin quail quartz quill quilt radish raft raisin raven
    reef ribbon ridge robin rosemary ruby saddle saffron sage salmon sandal satin scarf seagull sequoia
    shell sherbet shovel shrub silk sketch sled slipper snail sorrel sparrow spinach sponge spruce squash
    squirrel stable starling stove straw strudel sugar sunflower swallow swan sycamore tablet tangerine
    teapot thimble thistle thyme timber toffee tomato topaz torch tortoise towel trellis trumpet tulip tundra
    turnip turtle umbrella velvet vessel village vine walnut walrus wagon weasel whistle willow wren yarn
    yogurt zebra zinnia alder amber apricot arbor attic avocado banjo bayou biscuit bluff bobcat bramble
    brass brick bugle burrow cameo caramel cashew catfish cello chapel cherub chisel cliff clove cobble
    cocoa condor cottage cove coyote crane creek crocus crumpet cumin dahlia delta dingo drum elm falls fjord
    flask flint fudge gazelle geyser gingham glade gorge grove gypsum hatchet hearth hedge helmet hemlock
    hilltop hyacinth igloo inlet jade jaguar kayak kelp kiln knoll lark laurel ledge lemur lichen lynx mallet
    manor maroon meteor mesa mole moor muslin nettle nugget ochre orbit osprey paprika parsley pastry pecan
    penguin pier plaza pond prism puddle quarry rapids rattan redwood rhubarb rook rye scone shale shore
    sienna slate spool spur stump summit tamarind tapestry tavern thicket tinsel trout tulle tweed vanilla
    vista waffle wharf wicker wigwam yacht zephyr
""".split()))


def split_of(word: str) -> str:
    """A word's split, fixed by its hash: about one word in four is a test word."""
    return "test" if zlib.crc32(word.encode()) % 4 == 0 else "train"


DEV_WORDS = tuple("""
    atlas axle barn beaver bench bison blender broom buckle cabbage canoe cargo celery chariot cinnamon collar
    cookie corridor crab dough eggplant elbow elk envelope fireplace glove goose harbour harness hinge hockey ink
    jar jug kernel kiwi lettuce lighthouse loom mackerel mattress moose mortar mushroom oven papaya pudding python
    reindeer sesame shutter skillet spindle turkey turquoise wasp chair clock truck coffee cheese horse sheep spoon
    knife crown sword plate tower field trail whale shark medal abacus acrobat adobe antler apron arcade armchair bagel
    ballad bandana baton bellows blimp bobbin bookend bouquet bristle burlap caboose calico cardigan cartwheel
    cashmere casket catapult cheetah clarinet cockle conch cornet cowbell awning bungalow cairn gherkin kazoo
""".split())

POOLS = {**{split: tuple(w for w in WORDS if split_of(w) == split) for split in SPLITS}, "dev": DEV_WORDS}
EXTENSIONS = (".txt", ".md", ".csv", ".log")


class Draw:
    """Names and text for one task, drawn from one split's pool: names are never reused within a task."""

    def __init__(self, rng: random.Random, pool: tuple[str, ...]):
        self.rng, self.pool = rng, pool
        self.used: set[str] = set()
        self.banned: tuple[str, ...] = ()  # substrings no name or text may contain (find_word's target)

    def _allowed(self, word: str) -> bool:
        return not any(b in word for b in self.banned)

    def word(self) -> str:
        while True:
            w = self.rng.choice(self.pool)
            if w not in self.used and self._allowed(w):
                self.used.add(w)
                return w

    def folder(self) -> str:
        return self.word() if self.rng.random() < 0.7 else f"{self.word()}/{self.word()}"

    def file(self, folder: str, ext: str = ".txt") -> str:
        return f"{folder}/{self.word()}{ext}" if folder else f"{self.word()}{ext}"

    def line(self, ext: str = ".txt") -> str:
        words = [w for w in self.rng.choices(self.pool, k=self.rng.randint(2, 4)) if self._allowed(w)]
        words = words or [self.word()]
        return ",".join(words) if ext == ".csv" else " ".join(words)

    def text(self, ext: str = ".txt", lo: int = 2, hi: int = 5) -> str:
        """Lines ending with a newline; no two equal, so reversing or merging them is observable."""
        lines: list[str] = []
        n = self.rng.randint(lo, hi)
        while len(lines) < n:
            line = self.line(ext)
            if line not in lines:
                lines.append(line)
        return "\n".join(lines) + "\n"

    def distractors(self, files: dict[str, str], lo: int = 1, hi: int = 4) -> None:
        """Unrelated files in fresh folders (and sometimes at the top level)."""
        folders = [self.folder() for _ in range(self.rng.randint(1, 2))] + [""]
        for _ in range(self.rng.randint(lo, hi)):
            ext = self.rng.choice(EXTENSIONS)
            files[self.file(self.rng.choice(folders), ext)] = self.text(ext)
