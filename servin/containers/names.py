"""Container names: validation and Docker-style generated names (adjective_surname)."""

from __future__ import annotations

import re
import secrets

from servin.errors import InvalidArgument

VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

# A shorter list than moby's namesgenerator, same scheme: an adjective and a notable
# scientist or engineer.
ADJECTIVES = (
    "admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome",
    "beautiful", "blissful", "bold", "boring", "brave", "busy", "charming", "clever",
    "cool", "compassionate", "competent", "condescending", "confident", "cranky", "crazy",
    "dazzling", "determined", "distracted", "dreamy", "eager", "ecstatic", "elastic",
    "elated", "elegant", "eloquent", "epic", "exciting", "fervent", "festive", "flamboyant",
    "focused", "friendly", "frosty", "funny", "gallant", "gifted", "goofy", "gracious",
    "great", "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring",
    "interesting", "intelligent", "jolly", "jovial", "keen", "kind", "laughing", "loving",
    "lucid", "magical", "modest", "musing", "mystifying", "naughty", "nervous", "nice",
    "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive",
    "practical", "priceless", "quirky", "quizzical", "recursing", "relaxed", "reverent",
    "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "stupefied",
    "suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat", "vibrant",
    "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous",
    "zen",
)
SURNAMES = (
    "albattani", "allen", "almeida", "archimedes", "ardinghelli", "babbage", "banach",
    "bardeen", "bartik", "bassi", "bell", "benz", "bhabha", "black", "blackwell", "bohr",
    "booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown", "carson", "cerf",
    "chandrasekhar", "chatelet", "chaum", "clarke", "colden", "cori", "cray", "curie",
    "darwin", "davinci", "diffie", "dijkstra", "dirac", "driscoll", "dubinsky", "easley",
    "einstein", "elion", "engelbart", "euclid", "euler", "faraday", "fermat", "fermi",
    "feynman", "franklin", "gagarin", "galileo", "gates", "gauss", "germain", "goldberg",
    "goldstine", "goodall", "hamilton", "hawking", "heisenberg", "hermann", "hodgkin",
    "hofstadter", "hoover", "hopper", "hugle", "hypatia", "jackson", "jang", "jennings",
    "jepsen", "johnson", "joliot", "jones", "kalam", "kare", "keller", "kepler", "khorana",
    "kilby", "kirch", "knuth", "kowalevski", "lalande", "lamarr", "lamport", "leakey",
    "leavitt", "lewin", "lichterman", "liskov", "lovelace", "lumiere", "mahavira", "margulis",
    "matsumoto", "mayer", "mccarthy", "mcclintock", "mclean", "meitner", "mendel", "merkle",
    "mestorf", "mirzakhani", "montalcini", "moore", "morse", "moser", "napier", "nash",
    "neumann", "newton", "nightingale", "nobel", "noether", "northcutt", "noyce", "panini",
    "pare", "pascal", "pasteur", "payne", "perlman", "pike", "poincare", "poitras",
    "ptolemy", "raman", "ramanujan", "ride", "ritchie", "robinson", "roentgen", "rosalind",
    "rubin", "saha", "sammet", "sanderson", "shannon", "shaw", "shirley", "shockley",
    "sinoussi", "snyder", "spence", "stonebraker", "sutherland", "swanson", "swartz",
    "swirles", "taussig", "tesla", "tharp", "thompson", "torvalds", "turing", "varahamihira",
    "villani", "visvesvaraya", "volhard", "wescoff", "wiles", "williams", "wilson", "wing",
    "wozniak", "wright", "wu", "yalow", "yonath", "zhukovsky",
)


def validate_name(name: str) -> str:
    """Return the name without its leading slash, or raise Docker's 400."""
    if not VALID_NAME.match(name):
        raise InvalidArgument(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def generate_name(attempt: int = 0) -> str:
    """Docker's scheme; after a few clashes a digit is appended, as moby does."""
    name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"
    if name == "boring_wozniak":  # Steve Wozniak is not boring (moby's rule)
        return generate_name(attempt)
    if attempt > 0:
        name += str(secrets.randbelow(10))
    return name
