//! upsoak-agent: the Monitor (built in its own issue).
