"""Campaigns (专项行动 / 专项整治, e.g. 百日会战, 双迎攻坚): a period, a scope, targets as data, a
back-planned schedule of milestones (倒排进度), the cases carrying the campaign's tag, and the
progress of each target per day (a burn-down)."""
