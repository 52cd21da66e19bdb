"""Reports for operators: how a campaign went, read from the database and never written to
(`campaign.figures`), drawn as charts on the server (`charts`), one page or JSON
(`python -m bot report`). It sits above money and gifting, whose books it reads."""
