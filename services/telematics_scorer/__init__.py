"""telematics_scorer: trips, harsh events, crashes and driver scores from vehicle readings (issue #4)."""
