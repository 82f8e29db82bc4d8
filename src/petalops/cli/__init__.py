"""The `petalops` command line (`petalops.cli.app`)."""

import os

# pydantic looks up plugins (logfire's, say) among every installed distribution's entry points
# the first time it builds a model: ~5 ms of every command (`hyperfine` of `petalops config`
# with and without it: 151.6 against 156.4 ms of user time), for an observability hook no
# command here uses. PYDANTIC_DISABLE_PLUGINS is pydantic's own switch; set it to "" in the
# environment to have them loaded by the CLI too.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
