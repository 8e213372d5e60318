"""A person's identifiers other than the e-mail: phone numbers (E.164, through Google's
libphonenumber port `phonenumbers`) and social profile URLs. Pure functions: the serializers,
the form, the admin and the import all validate through them, so the four agree."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import phonenumbers
from django.utils.translation import gettext as _

MAX_PROFILES = 10


class IdentityError(ValueError):
    pass


def normalise_phone(value: str, country: str = "") -> str:
    """`value` in E.164 ("+442079460000"). A number without a leading + is read as a national
    number of `country` (the lead's ISO code); the number must be valid for its region, not only
    well-formed. An IdentityError says why not."""
    text = value.strip()
    if not text:
        return ""
    region = country.upper() if country and not text.startswith("+") else None
    if region is None and not text.startswith("+"):
        raise IdentityError(_("'%(value)s' needs a country code (+...) or the lead's country.") % {"value": value})
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise IdentityError(_("'%(value)s' is not a phone number.") % {"value": value}) from exc
    if not phonenumbers.is_valid_number(number):
        raise IdentityError(
            _("'%(value)s' is not a valid phone number for %(region)s.")
            % {"value": value, "region": phonenumbers.region_code_for_number(number) or region or "?"}
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_profiles(values: Iterable[str]) -> list[str]:
    """Social profile URLs: absolute http(s) URLs with a host, at most MAX_PROFILES, duplicates
    dropped (order kept)."""
    out: list[str] = []
    for raw in values:
        url = str(raw).strip()
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 500 or any(c.isspace() for c in url):
            raise IdentityError(_("'%(value)s' is not an http(s) profile URL.") % {"value": url[:100]})
        if url not in out:
            out.append(url)
    if len(out) > MAX_PROFILES:
        raise IdentityError(_("At most %(n)d profile URLs.") % {"n": MAX_PROFILES})
    return out


def split_profiles(text: str) -> list[str]:
    """A CSV cell or a form field listing profile URLs, separated by spaces, commas, semicolons
    or newlines."""
    for sep in (",", ";", "\n", "\r", "\t"):
        text = text.replace(sep, " ")
    return [part for part in text.split(" ") if part]
