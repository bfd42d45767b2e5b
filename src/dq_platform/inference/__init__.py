"""The inference API: one Powertools resolver served by Lambda, `dqp serve` and the tests alike."""
