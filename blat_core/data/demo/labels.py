"""How the demo's events are named in each dataset: real label vocabularies, not AudioSet names."""

from __future__ import annotations

from blat_core.data.demo.sounds import EVENTS, UNCAPTIONED

# ESC-50: event key -> (category, target index of the real ESC-50 class list).
ESC50 = {
    "bark": ("dog", 0),
    "meow": ("cat", 5),
    "rain": ("rain", 10),
    "cricket": ("crickets", 13),
    "bird": ("chirping_birds", 14),
    "wind": ("wind", 16),
    "water_tap": ("pouring_water", 17),
    "thunder": ("thunderstorm", 19),
    "baby_cry": ("crying_baby", 20),
    "applause": ("clapping", 22),
    "cough": ("coughing", 24),
    "footsteps": ("footsteps", 25),
    "knock": ("door_wood_knock", 30),
    "alarm_clock": ("clock_alarm", 37),
    "tick_tock": ("clock_tick", 38),
    "helicopter": ("helicopter", 40),
    "siren": ("siren", 42),
    "car_horn": ("car_horn", 43),
    "engine": ("engine", 44),
    "church_bell": ("church_bells", 46),
}
ESC10 = {
    "dog",
    "rooster",
    "rain",
    "sea_waves",
    "crackling_fire",
    "crying_baby",
    "sneezing",
    "clock_tick",
    "helicopter",
    "chainsaw",
}

# UrbanSound8K: event key -> (class, classID of the real dataset).
US8K = {
    "car_horn": ("car_horn", 1),
    "bark": ("dog_bark", 3),
    "drill": ("drilling", 4),
    "engine": ("engine_idling", 5),
    "gunshot": ("gun_shot", 6),
    "jackhammer": ("jackhammer", 7),
    "siren": ("siren", 8),
    "flute": ("street_music", 9),
}

# VGGSound: event key -> label text as in vggsound.csv (lower case, may contain commas).
VGGSOUND = {
    "bark": "dog barking",
    "meow": "cat meowing",
    "bird": "birds chirping, tweeting",
    "siren": "ambulance siren",
    "church_bell": "church bell ringing",
    "engine": "car engine idling",
    "rain": "raining",
    "thunder": "thunder",
    "speech": "male speech, man speaking",
    "baby_cry": "baby crying",
    "piano": "playing piano",
    "flute": "playing flute",
    "helicopter": "helicopter",
    "gunshot": "machine gun shooting",
    "telephone": "telephone bell ringing",
    "car_horn": "vehicle horn, car horn, honking",
}

# MACS: event key -> MACS tag.
MACS = {
    "speech": "adults_talking",
    "footsteps": "footsteps",
    "car_horn": "car",
    "engine": "traffic",
    "siren": "siren",
    "bird": "birds_singing",
    "bark": "dog_bark",
    "piano": "music",
}


def fsd50k_label(display_name: str) -> str:
    """FSD50K's spelling of an AudioSet display name: 'Walk, footsteps' -> 'Walk_and_footsteps'."""
    return display_name.replace(", ", "_and_").replace(" ", "_")


FSD50K = {event.key: (fsd50k_label(event.display_name), event.mid) for event in EVENTS}

# AudioSet classes listed in the demo's class_labels_indices.csv that no demo clip carries.
UNUSED_AUDIOSET = (("/m/04rlf", "Music"), ("/m/0jbk", "Animal"), ("/m/07yv9", "Vehicle"), ("/m/0bt9lr", "Dog"))

CAPTIONED = tuple(e.key for e in EVENTS if e.key not in UNCAPTIONED)
