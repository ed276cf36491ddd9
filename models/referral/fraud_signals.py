# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""How the fraud review compares a referee with its sponsor: identifiers,
company email domains and phone numbers reduced to comparable forms. Plain
functions, shared by the review of one referral and of an imported file."""

import re

from odoo.tools import email_domain_extract

# Free-mail providers: a domain shared by two strangers there says nothing
# about a company. The common providers only; a company's own domain is
# what the check looks for.
FREE_MAIL_DOMAINS = frozenset(
    """
    gmail.com googlemail.com hotmail.com hotmail.fr hotmail.co.uk hotmail.de
    hotmail.es hotmail.it hotmail.be hotmail.ca outlook.com outlook.fr
    outlook.de outlook.es outlook.be outlook.jp live.com live.fr live.co.uk
    live.nl live.be live.de live.it live.ca live.com.au live.com.mx msn.com
    windowslive.com yahoo.com yahoo.fr yahoo.co.uk yahoo.de yahoo.es yahoo.it
    yahoo.ca yahoo.co.in yahoo.in yahoo.com.br yahoo.com.mx yahoo.com.au
    yahoo.co.jp ymail.com rocketmail.com aol.com aim.com icloud.com me.com
    mac.com mail.com email.com usa.com gmx.com gmx.net gmx.de gmx.fr gmx.at
    gmx.ch web.de t-online.de freenet.de arcor.de posteo.de online.de
    free.fr orange.fr wanadoo.fr laposte.net sfr.fr neuf.fr bbox.fr
    club-internet.fr voila.fr skynet.be telenet.be scarlet.be bluewin.ch
    libero.it virgilio.it tiscali.it alice.it tin.it ziggo.nl home.nl
    xs4all.nl protonmail.com protonmail.ch proton.me zoho.com yandex.com
    yandex.ru ya.ru mail.ru bk.ru inbox.ru list.ru rambler.ru seznam.cz wp.pl
    o2.pl op.pl abv.bg ukr.net sapo.pt uol.com.br bol.com.br terra.com.br
    qq.com vip.qq.com foxmail.com 163.com 126.com 139.com 189.cn sina.com
    sina.cn sohu.com yeah.net aliyun.com naver.com hanmail.net nate.com
    rediffmail.com comcast.net att.net sbcglobal.net verizon.net cox.net
    bellsouth.net btinternet.com sky.com shaw.ca rogers.com videotron.ca
    bigpond.com optusnet.com.au iinet.net.au yopmail.com mailinator.com
    example.com
    """.split()
)
# A phone number is compared on its last digits: written with a country
# code or a national prefix alike.
PHONE_DIGITS = 8


def normalize_identifier(value):
    """A Tax ID or registry number without spaces, dots or dashes."""
    return re.sub(r"[^0-9A-Z]", "", (value or "").upper())


def company_email_domains(emails):
    """The email domains of ``emails`` that identify a company: free-mail
    providers left out."""
    domains = {email_domain_extract(email or "") for email in emails}
    return {d for d in domains if d and d not in FREE_MAIL_DOMAINS}


def normalize_phones(phones):
    """Phone numbers reduced to their last digits, short ones left out."""
    digits = {re.sub(r"\D", "", phone or "") for phone in phones}
    return {d[-PHONE_DIGITS:] for d in digits if len(d) >= PHONE_DIGITS}
