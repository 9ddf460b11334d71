"""Roll-call of duty posts (查岗点名): is every post of the units below manned right now?"""
