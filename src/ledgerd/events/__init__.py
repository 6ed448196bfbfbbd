"""Change events out: every applied journal entry, published once to ``balance-events``.

``codec`` is the record format (docs/events.md), ``publisher`` the loop that tails the
journal of the partitions a consumer owns and publishes it, ``tail`` reads the topic
back for TailEvents.
"""
