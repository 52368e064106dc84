"""Captions written from a clip's events, in AudioCaps style (short, plain) or Clotho style
(longer, other words), with several phrasings per event and several sentence shapes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# key -> (clauses, gerund phrases); AudioCaps-style wording.
AUDIOCAPS_PHRASES: dict[str, tuple[list[str], list[str]]] = {
    "bark": (["a dog barks", "a dog is barking", "dogs bark"], ["a dog barking", "dogs barking"]),
    "meow": (["a cat meows", "a cat is meowing", "a kitten meows"], ["a cat meowing", "a kitten meowing"]),
    "bird": (["birds chirp", "a bird sings", "birds are chirping"], ["birds chirping", "a bird singing"]),
    "siren": (
        ["a siren wails", "an emergency siren sounds", "a siren is blaring"],
        ["a siren wailing", "sirens blaring"],
    ),
    "church_bell": (
        ["a church bell rings", "bells are ringing", "a bell tolls"],
        ["a church bell ringing", "bells ringing"],
    ),
    "engine": (["an engine idles", "a motor is running", "an engine rumbles"], ["an engine idling", "a motor running"]),
    "rain": (["rain falls", "it is raining", "rain pours down"], ["rain falling", "rain pattering"]),
    "wind": (["wind blows", "the wind is blowing", "wind gusts"], ["wind blowing", "wind gusting"]),
    "thunder": (["thunder rumbles", "thunder roars", "thunder crashes"], ["thunder rumbling", "thunder roaring"]),
    "speech": (["a man speaks", "a person is talking", "someone speaks"], ["a man speaking", "people talking"]),
    "baby_cry": (["a baby cries", "an infant is crying", "a baby wails"], ["a baby crying", "an infant crying"]),
    "cough": (["a person coughs", "someone coughs", "a man is coughing"], ["a person coughing", "someone coughing"]),
    "footsteps": (
        ["footsteps approach", "a person walks", "someone is walking"],
        ["footsteps walking", "a person walking"],
    ),
    "applause": (["people clap", "a crowd applauds", "an audience claps"], ["people clapping", "a crowd applauding"]),
    "knock": (
        ["someone knocks on a door", "a door is knocked", "knocking on wood"],
        ["someone knocking", "knocking on a door"],
    ),
    "tick_tock": (
        ["a clock ticks", "a clock is ticking", "a clock tick tocks"],
        ["a clock ticking", "a clock tocking"],
    ),
    "alarm_clock": (
        ["an alarm beeps", "an alarm clock rings", "an alarm is beeping"],
        ["an alarm beeping", "an alarm clock ringing"],
    ),
    "telephone": (
        ["a telephone rings", "a phone is ringing", "a phone rings"],
        ["a telephone ringing", "a phone ringing"],
    ),
    "car_horn": (["a car horn honks", "a vehicle honks", "a horn beeps"], ["a car horn honking", "a vehicle honking"]),
    "piano": (
        ["a piano plays", "someone plays a piano", "piano music plays"],
        ["a piano playing", "piano music playing"],
    ),
    "flute": (
        ["a flute plays", "someone plays a flute", "a flute melody plays"],
        ["a flute playing", "a flute melody"],
    ),
    "water_tap": (
        ["water runs from a faucet", "a tap is running", "water flows"],
        ["water running", "a faucet running"],
    ),
}

# Clotho-style wording: different vocabulary, adjectives and adverbials.
CLOTHO_PHRASES: dict[str, tuple[list[str], list[str]]] = {
    "bark": (
        ["a large canine barks loudly several times", "a hound yelps in short bursts"],
        ["a hound yelping in short bursts", "a canine barking over and over"],
    ),
    "meow": (
        ["a small feline mews plaintively", "a house cat cries out for attention"],
        ["a feline mewing softly", "a house cat crying for attention"],
    ),
    "bird": (
        ["small songbirds twitter high in the trees", "several birds sing a cheerful tune"],
        ["songbirds twittering in the trees", "birds singing cheerfully"],
    ),
    "siren": (
        ["an ambulance siren rises and falls in pitch", "a loud police siren howls down the street"],
        ["an ambulance siren rising and falling", "a police siren howling"],
    ),
    "church_bell": (
        ["heavy bells toll slowly from a distant tower", "a large bell chimes out over the town"],
        ["bells tolling from a tower", "a large bell chiming"],
    ),
    "engine": (
        ["a heavy motor hums steadily at low speed", "the engine of a vehicle drones on"],
        ["a motor humming steadily", "an engine droning"],
    ),
    "rain": (
        ["steady rain patters onto the ground", "heavy raindrops hit a hard surface"],
        ["raindrops pattering on the ground", "heavy rain hitting the roof"],
    ),
    "wind": (
        ["a strong breeze howls across an open field", "gusts of air sweep past the microphone"],
        ["a strong breeze howling", "gusts of air sweeping past"],
    ),
    "thunder": (
        ["deep thunder rolls across the sky", "a storm booms in the distance"],
        ["deep thunder rolling overhead", "a storm booming far away"],
    ),
    "speech": (
        ["a person talks in a low voice", "someone is having a conversation nearby"],
        ["a person talking quietly", "voices chatting nearby"],
    ),
    "baby_cry": (
        ["a young child sobs loudly", "a newborn bawls without stopping"],
        ["a young child sobbing", "a newborn bawling"],
    ),
    "cough": (
        ["a sick person clears their throat harshly", "someone hacks and coughs a few times"],
        ["a sick person clearing their throat", "someone hacking"],
    ),
    "footsteps": (
        ["someone strolls slowly across a hard floor", "feet shuffle along a wooden floor"],
        ["someone strolling across the floor", "feet stepping on wood"],
    ),
    "applause": (
        ["a large audience claps enthusiastically", "many hands applaud at the end of a show"],
        ["an audience clapping enthusiastically", "many hands applauding"],
    ),
    "knock": (
        ["a visitor raps on a wooden door", "knuckles tap firmly against wood"],
        ["a visitor rapping on a door", "knuckles tapping on wood"],
    ),
    "tick_tock": (
        ["an old clock ticks away steadily", "a mechanical timepiece tocks in a quiet room"],
        ["an old clock ticking steadily", "a timepiece tocking"],
    ),
    "alarm_clock": (
        ["an electronic alarm beeps insistently", "a wake up alarm goes off repeatedly"],
        ["an electronic alarm beeping", "a wake up alarm going off"],
    ),
    "telephone": (
        ["an old fashioned telephone rings repeatedly", "a landline phone keeps ringing"],
        ["an old telephone ringing", "a landline phone ringing"],
    ),
    "car_horn": (
        ["an impatient driver honks the horn", "a vehicle horn blares in traffic"],
        ["a driver honking the horn", "a vehicle horn blaring"],
    ),
    "piano": (
        ["a pianist plays a simple melody on the keys", "gentle notes are played on a piano"],
        ["a pianist playing a melody", "gentle piano notes"],
    ),
    "flute": (
        ["a woodwind instrument plays a soft tune", "a flautist performs a gentle melody"],
        ["a woodwind playing a soft tune", "a flautist performing"],
    ),
    "water_tap": (
        ["water streams out of a kitchen faucet", "liquid pours steadily from a tap"],
        ["water streaming from a faucet", "liquid pouring from a tap"],
    ),
}

CLOTHO_LEADS = ["", "in the distance ", "close by ", "outside ", "in a quiet room "]


@dataclass(frozen=True)
class PlacedEvent:
    """An event as the caption writer sees it: what, when and how loud."""

    key: str
    onset: float
    offset: float
    snr_db: float


def write_caption(events: list[PlacedEvent], rng: np.random.Generator, style: str) -> str:
    """One caption for the events of a clip; `style` is 'audiocaps' or 'clotho'."""
    phrases = AUDIOCAPS_PHRASES if style == "audiocaps" else CLOTHO_PHRASES
    ordered = sorted(events, key=lambda e: e.onset)
    quietest = min(ordered, key=lambda e: e.snr_db)
    background = quietest if len(ordered) > 1 and quietest.snr_db < max(e.snr_db for e in ordered) - 6 else None

    def clause(e):
        return str(rng.choice(phrases[e.key][0]))

    def gerund(e):
        return str(rng.choice(phrases[e.key][1]))

    fore = [e for e in ordered if e is not background]
    if len(fore) == 1:
        text = clause(fore[0])
    elif len(fore) == 2:
        first, second = fore
        shapes = [
            f"{clause(first)} while {clause(second)}",
            f"{clause(first)} and {clause(second)}",
            f"{clause(first)} as {clause(second)}",
        ]
        if first.offset <= second.onset:
            shapes += [f"{clause(first)} followed by {gerund(second)}", f"{clause(first)}, then {clause(second)}"]
        text = str(rng.choice(shapes))
    else:
        text = f"{clause(fore[0])}, {clause(fore[1])} and {clause(fore[2])}"
    if background is not None:
        text += str(
            rng.choice(
                [
                    f" with {gerund(background)} in the background",
                    f" while {gerund(background)} can be heard in the background",
                ]
            )
        )
    if style == "clotho":
        lead = str(rng.choice(CLOTHO_LEADS))
        text = text if lead and lead.strip() in text else lead + text
        return text[0].upper() + text[1:] + "."
    return text[0].upper() + text[1:]
