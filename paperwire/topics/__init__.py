"""Topic map and trends: a 2-D map of the corpus (:mod:`.map`), cluster labels (:mod:`.labels`),
topics over time and "rising this week" (:mod:`.trends`)."""

from paperwire.topics.map import (EmptyMap, MapUnavailable, build_map, empty_reason, map_status,  # noqa: F401
                                  place_new)
