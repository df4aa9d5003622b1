"""After editing safety/examples, write the scorer that ships anew:

    python -m xuetu.safety.scorer
"""

import logging

from xuetu.notify import log, note
from xuetu.safety.scorer.storage import SHIPPED, build_shipped

if __name__ == "__main__":
    log.addHandler(logging.StreamHandler())  # this entry point shows the library's notes on standard error
    log.setLevel(logging.INFO)
    built = build_shipped()
    note(f"wrote {SHIPPED} ({SHIPPED.stat().st_size / 1e6:.1f} MB) from {sum(built.info['examples'].values())} "
         f"examples, fingerprint {built.info['fingerprint']}")
