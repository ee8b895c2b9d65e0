"""A short, human device label from a User-Agent string ("Chrome on macOS")."""

from __future__ import annotations

BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
            ("Chromium/", "Chromium"), ("Safari/", "Safari"), ("curl/", "curl"), ("python-requests", "Python"),
            ("HeadlessChrome", "Chrome"))
SYSTEMS = (("Windows", "Windows"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"),
           ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def device_label(agent: str) -> str:
    if not agent:
        return "Unknown device"
    browser = next((name for token, name in BROWSERS if token in agent), "Browser")
    system = next((name for token, name in SYSTEMS if token in agent), "")
    return f"{browser} on {system}" if system else browser
