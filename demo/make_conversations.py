#!/usr/bin/env python3
"""Generate demo/conversations.csv: sample historical support conversations.

The conversations belong to the fictional retailer Nimbus Gear and are built from
the hand-written message templates below (written for this project). The output
is deterministic (random.Random(7)).

Usage (from the repository root):

    python demo/make_conversations.py

Output columns: conversation_id, timestamp, role, text, channel
  * role: customer | agent
  * channel: chat | email | phone
  * timestamps: ISO-8601 in UTC, between 2026-11-09 and 2026-11-22

The data contains a story an operator dashboard can surface: a DHL sorting-centre
backlog causes a spike of angry "where is my parcel" emails on Friday 2026-11-20;
refund delays and a batch of Nimbus Cirrus 2 tents with faulty door zippers cause
further complaints during the second week.
"""

from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "conversations.csv"
SEED = 7
FIRST_DAY = date(2026, 11, 9)   # Monday
LAST_DAY = date(2026, 11, 22)   # Sunday
END_OF_DATA = datetime(2026, 11, 22, 23, 30, tzinfo=timezone.utc)
SPIKE_DAY = date(2026, 11, 20)

CUSTOMER_NAMES = [
    ("Anna", "Berger"), ("Lukas", "Gruber"), ("Sophie", "Wagner"), ("Jonas", "Keller"),
    ("Marie", "Huber"), ("Felix", "Schmid"), ("Laura", "Fischer"), ("Elias", "Moser"),
    ("Hannah", "Weber"), ("Paul", "Steiner"), ("Clara", "Novak"), ("Noah", "Brunner"),
    ("Emma", "Hofer"), ("Leon", "Baumann"), ("Mia", "Lehmann"), ("David", "Roth"),
    ("Julia", "Pichler"), ("Tim", "Vogel"), ("Sarah", "Frei"), ("Matteo", "Rossi"),
    ("Chloe", "Martin"), ("Jan", "de Vries"), ("Eva", "Kovac"), ("Tom", "Walsh"),
    ("Ingrid", "Larsen"), ("Marco", "Bernasconi"), ("Lisa", "Winter"), ("Ben", "Koch"),
]
AGENTS = ["Mira", "Jonas", "Selin", "Tobias", "Katrin", "Luca"]

# ---------------------------------------------------------------------------
# Message templates.
#
# Each topic has "dialogues": (customer opener, [fitting agent replies]),
# "followups": (customer follow-up, agent answer) pairs that fit any dialogue
# of the topic, and "closings": last customer messages.
# Placeholders: {order}, {first}, {date}.
# ---------------------------------------------------------------------------

NEUTRAL_CLOSINGS = [
    "Perfect, thank you!",
    "Great, thanks for the quick answer.",
    "OK, understood. Thanks anyway.",
    "Thanks, that helps a lot!",
    "Alright, thank you.",
    "Super, have a nice day!",
]
NEUTRAL_SIGNOFFS = [
    "You're welcome! Have a great day.",
    "Happy to help - enjoy your next trip!",
    "Anytime. Let us know if there's anything else.",
]

TOPICS = {
    "late_delivery": {
        "sentiment": "negative",
        "dialogues": [
            ("My order {order} was supposed to arrive on Tuesday and it's still not here. The tracking "
             "hasn't changed in days. What is going on?", ["investigate", "backlog"]),
            ("Where is my parcel?? Order {order}, I paid for EXPRESS and nothing arrived. I needed the "
             "gear for this weekend.", ["express"]),
            ("It's been 8 days since you shipped {order} and DHL still shows 'in transit'. This is "
             "ridiculous.", ["investigate", "replacement"]),
            ("I'm really frustrated. The sleeping bag I ordered ({order}) should have been here last "
             "week and nobody tells me anything.", ["backlog", "investigate"]),
            ("Tracking for {order} says the parcel has been at the sorting centre since Monday. I'm "
             "leaving on a trip on Saturday - can you do anything?", ["replacement", "backlog"]),
            ("This is the second time I'm writing about {order}. Still no parcel, still no update. I "
             "want a refund if it doesn't arrive tomorrow.", ["replacement", "investigate"]),
            ("Honestly disappointed. I ordered a tent for my son's birthday, order {order}, and it's "
             "late. His birthday is on Sunday.", ["replacement", "backlog"]),
            ("Hi, my parcel seems to be stuck. Order {order}. The last scan was 6 days ago in "
             "Augsburg.", ["investigate"]),
            ("Your website promised 1-3 days for Germany. It's day 7 now. Order {order}. Not "
             "impressed.", ["backlog", "investigate"]),
            ("Does anybody actually read these emails? Order {order} is over a week late and the DHL "
             "hotline just sends me back to you.", ["investigate", "replacement"]),
        ],
        "replies": {
            "investigate": [
                "I'm very sorry about the delay, {first}. I've checked {order}: the parcel is in the "
                "DHL network but hasn't been scanned since it left our warehouse. I've opened an "
                "investigation with DHL today. It can take up to 8 business days, but if you need the "
                "items urgently I can send a replacement right away.",
            ],
            "backlog": [
                "Apologies for the wait. DHL currently has a backlog at several sorting centres, and "
                "from mid-November deliveries can take up to 2 extra business days. According to the "
                "latest scan your parcel {order} is moving again and should arrive within the next "
                "1-2 days.",
            ],
            "replacement": [
                "I understand how annoying this is. As there has been no tracking update for more "
                "than 5 business days, I've asked DHL to investigate and reserved a replacement for "
                "you. Just tell me whether you'd prefer the replacement or a full refund.",
            ],
            "express": [
                "I'm sorry, {first} - that's not the express service you paid for. If an express "
                "parcel isn't delivered on the next business day, we refund the express surcharge "
                "automatically once delivery is confirmed. I've also flagged {order} with DHL as "
                "urgent.",
            ],
        },
        "followups": [
            ("A replacement please, as fast as possible.",
             "Done - the replacement goes out today by express at no cost to you, and the tracking "
             "link will be in your inbox this afternoon. If the original parcel turns up, simply "
             "refuse it."),
            ("Why did nobody tell me about the delay? I had to find out myself.",
             "You're right, we should have informed you. I've passed your feedback on to the team. "
             "The investigation is open and I'll email you as soon as DHL replies."),
            ("I'd rather just have my money back.",
             "Understood. I've cancelled the shipment and issued a full refund including the "
             "shipping costs. It will be back on your payment method within 3 business days."),
            ("So what am I supposed to do now, just wait?",
             "If the parcel hasn't arrived by Monday, reply to this message and we'll send a "
             "replacement or refund straight away - your choice. I've added a note to your order so "
             "you won't have to explain everything again."),
            ("Will I at least get the shipping cost back?",
             "If the parcel is confirmed lost, you get a full refund including shipping. As an "
             "apology for the wait I've also added a 10 EUR voucher to your account."),
        ],
        "closings": [
            "Ok, thanks. I hope it arrives in time.",
            "Fine. But this is the last time I order right before a trip.",
            "Thanks for sorting it out so quickly, much appreciated.",
            "Still not happy, but thanks for the help.",
            "This is really poor service. I'll think twice before ordering again.",
        ],
        "signoffs": [
            "Again, I'm sorry for the trouble. I'll keep an eye on your order personally.",
            "I completely understand. Thank you for your patience.",
        ],
    },
    "refund_delay": {
        "sentiment": "negative",
        "dialogues": [
            ("I sent back a jacket three weeks ago and still haven't received my refund. Order "
             "{order}.", ["pending", "backlog"]),
            ("Your returns portal says my parcel was delivered to you on {date}. Where is my money??",
             ["pending", "issued"]),
            ("Hello, I returned two items from {order} and only got money back for one of them.",
             ["partial"]),
            ("I'm still waiting for the refund for my return. It's been more than two weeks. This is "
             "not acceptable.", ["backlog", "pending"]),
            ("DHL confirms you received my return on {date} but there's no refund yet. How long does "
             "this normally take?", ["pending", "issued"]),
            ("You refunded my order {order} but the shipping cost is missing. I sent back "
             "everything!", ["shipping"]),
            ("Three emails, no answer, no refund. I returned a 400 euro tent. I'm considering a "
             "chargeback with my bank.", ["backlog"]),
        ],
        "replies": {
            "pending": [
                "I'm sorry for the wait, {first}. Returns are checked within 3 business days of "
                "arriving at our warehouse, and the refund follows within 5 business days after the "
                "check. Your return for {order} has arrived but hasn't been inspected yet - I've asked "
                "the warehouse to prioritise it today.",
            ],
            "issued": [
                "Thank you for your patience. The refund for {order} was issued yesterday to your "
                "original payment method. Depending on your bank it can take a few more days until "
                "it shows on your statement.",
            ],
            "backlog": [
                "Please accept our apologies - our returns team had a backlog last week and your "
                "return took longer than it should. I've escalated {order}, and you'll receive the "
                "refund confirmation email within 2 business days.",
            ],
            "partial": [
                "Thanks for pointing this out. The second item was still waiting for inspection. It "
                "has been approved now, so the remaining amount will be refunded within 5 business "
                "days.",
            ],
            "shipping": [
                "You're right - when the whole order is returned, the standard shipping cost is "
                "refunded as well. I've just refunded the 4.95 EUR shipping separately.",
            ],
        },
        "followups": [
            ("Why does it take so long? You took my money within seconds.",
             "I understand the frustration. We inspect every item before refunding, which normally "
             "takes a few days. In your case it took longer than it should have, and I'm sorry."),
            ("I paid with PayPal, will it go back there?",
             "Yes, refunds always go back to the original payment method, so it will appear in your "
             "PayPal account."),
            ("Can you send me a confirmation when it's done?",
             "Of course. You'll get an automatic email as soon as the refund is made, and I've set "
             "myself a reminder to check on it."),
            ("I paid with Klarna and now I've received a payment reminder!",
             "Sorry about that. With Klarna invoice the invoice amount is reduced instead of "
             "refunded. I've informed Klarna about the return, so you don't need to pay for the "
             "returned items."),
        ],
        "closings": [
            "OK, I'll wait and see. Thanks.",
            "Finally. Thank you.",
            "I hope so. I'll write again if nothing arrives.",
            "Got the refund this morning, thanks.",
        ],
        "signoffs": [
            "Thanks for your patience, and sorry again for the delay.",
        ],
    },
    "tent_zipper": {
        "sentiment": "negative",
        "dialogues": [
            ("The zipper on the door of my Cirrus 2 broke on the second night of our trip. The tent "
             "is 4 months old! Really disappointing for a tent at this price.", ["claim", "batch"]),
            ("The zip on my Nimbus tent has come off the track and won't close. We had to sleep with "
             "the door open in the rain. What are you going to do about it?", ["claim_store", "claim"]),
            ("Hello, the slider on the inner door of my Cirrus 2 keeps splitting open behind it. I "
             "bought the tent in the Munich store in June.", ["batch", "claim_store"]),
            ("That's the second Cirrus 2 with a zipper problem in our hiking group this month. The "
             "zip just separates behind the slider. Is this a known issue?", ["batch"]),
            ("The zipper of my tent broke after a handful of uses. I want a new tent, not a "
             "repair.", ["claim"]),
            ("Hi, I registered my Cirrus 2 for the extended warranty last year. Now the fly zipper is "
             "stuck and the teeth are bent. How do I make a claim?", ["claim_store", "claim"]),
        ],
        "replies": {
            "claim": [
                "I'm sorry to hear that, {first} - that's not what a Nimbus tent should do. A broken "
                "zipper is covered by our warranty. Please send us two photos of the zipper and your "
                "order number or receipt, and we'll email you a free shipping label to our Munich "
                "workshop. The workshop assesses claims within 10 business days.",
            ],
            "claim_store": [
                "Thank you for letting us know, and sorry about the trouble. Zippers are covered by the "
                "warranty on Nimbus tents. You can start a claim under My account > My orders > "
                "Warranty claim, or hand the tent in at any of our stores. Please make sure it is "
                "completely dry first.",
            ],
            "batch": [
                "Apologies for the trouble. We have had several reports of slider problems on Cirrus 2 "
                "tents from one production batch this autumn, and we repair them free of charge under "
                "warranty. Could you send me a photo of the label inside the tent bag so I can check "
                "the batch number?",
            ],
        },
        "followups": [
            ("How long will I be without my tent? We're going away again in three weeks.",
             "The assessment takes up to 10 business days after arrival, and a zipper repair is "
             "usually done in that time. If it gets tight, I can lend you a tent from our rental stock "
             "free of charge - you'd pick it up in Munich or Vienna."),
            ("Why should I accept a repair? I want a replacement.",
             "Under the warranty we first repair the product; if a repair isn't possible, we replace "
             "it. A new zipper is as good as the original, and the rest of your warranty period stays "
             "valid."),
            ("Photos attached. The receipt is in there too.",
             "Thanks, everything is there. Your claim is approved and the free shipping label is on "
             "its way to your inbox."),
            ("Do I need to send the poles and pegs too?",
             "No, just the inner tent and the flysheet - please keep the poles and pegs at home."),
        ],
        "closings": [
            "OK, I'll send it in. Let's hope it's fixed properly this time.",
            "Thanks, that's a fair solution.",
            "Fine, but I expected better quality for 349 euros.",
            "Great, thank you for the quick response.",
        ],
        "signoffs": [
            "Thanks for your understanding - we'll get your tent back in shape.",
        ],
    },
    "damaged_item": {
        "sentiment": "negative",
        "dialogues": [
            ("My stove arrived with a broken valve and the box was completely crushed. Order "
             "{order}.", ["damage"]),
            ("The sleeping mat I received has a hole in it straight out of the package!", ["damage"]),
            ("I got the wrong jacket - I ordered a size M in blue and received an L in red. Order "
             "{order}.", ["wrong"]),
        ],
        "replies": {
            "damage": [
                "I'm so sorry about that, {first}. Could you send us a few photos of the item and the "
                "packaging? You can choose between a free replacement or a full refund including "
                "shipping.",
            ],
            "wrong": [
                "Sorry for the mix-up! I've sent the correct jacket (M, blue) today at no cost, and a "
                "free return label for the wrong one is in your inbox. Please send it back within 14 "
                "days.",
            ],
        },
        "followups": [
            ("I'll take a replacement please.",
             "Done - the replacement ships today and you'll receive the tracking link by email."),
            ("Do I really have to send the broken one back?",
             "For items over 30 EUR, yes - but the return label is free. Anything under 30 EUR you "
             "can simply recycle."),
        ],
        "closings": [
            "Thanks for the quick help.",
            "Alright, photos are on their way.",
        ],
        "signoffs": NEUTRAL_SIGNOFFS,
    },
    "tracking": {
        "sentiment": "neutral",
        "dialogues": [
            ("Hi, how can I see where my order is? I ordered as a guest.", ["guest"]),
            ("I got the shipping email, but the tracking link says no information is available. "
             "Order {order}.", ["noinfo"]),
            ("Why did I get two tracking numbers for one order?", ["split"]),
            ("Has my order {order} left the warehouse yet?", ["left"]),
            ("Can I get a text message when my parcel is out for delivery?", ["sms"]),
        ],
        "replies": {
            "guest": ["You can use 'Track my order' in the website footer - just enter your order "
                      "number and the email address you used at checkout."],
            "noinfo": ["That's normal right after dispatch - it can take up to 24 hours until the "
                       "first scan shows up. Your parcel {order} left our warehouse today."],
            "split": ["Your order was shipped in two parcels because the items were stored in "
                      "different parts of our warehouse. Both tracking numbers are in My orders, and "
                      "the split shipment doesn't cost you anything extra."],
            "left": ["Yes, {order} was dispatched this morning. You'll find the tracking link in your "
                     "shipping confirmation email and under My account > My orders."],
            "sms": ["If you enter your mobile number at checkout, the carrier sends you a delivery "
                    "notification on the day of delivery."],
        },
        "followups": [
            ("Thanks. Roughly when will it arrive? I live in Graz.",
             "Standard delivery to Austria takes 2-4 business days after dispatch."),
            ("Can I still change the delivery address?",
             "For DHL parcels within Germany you can redirect it via the DHL tracking page. For other "
             "countries the address can't be changed once the parcel is on its way."),
        ],
    },
    "change_order": {
        "sentiment": "neutral",
        "dialogues": [
            ("I just ordered the Storm jacket in L but I need an M. I placed the order 20 minutes ago, "
             "can you change it?", ["ok"]),
            ("Can I still cancel my order {order}? I placed it this morning.", ["late"]),
            ("I forgot to enter my discount code. Can you still apply it?", ["code"]),
            ("I'd like to add a stove to the order I placed an hour ago.", ["add"]),
        ],
        "replies": {
            "ok": ["No problem - your order is still within the 2-hour window. I've changed the size "
                   "to M for you."],
            "late": ["I'm afraid the 2-hour window for changes has passed and the order is already "
                     "with the warehouse. You can refuse the delivery or send the items back with "
                     "the free return label within 30 days."],
            "code": ["Discount codes can't be added after an order is placed. As your order is less "
                     "than 2 hours old, you can cancel it under My orders and place it again with "
                     "the code."],
            "add": ["Unfortunately items can't be added to an existing order. Please place a second "
                    "order - if it reaches 75 EUR on its own, shipping is free."],
        },
        "followups": [
            ("Will the money for the cancelled order come back to my card?",
             "Yes - for card payments the reserved amount is released immediately; your bank may "
             "take up to 3 business days to remove it from your statement."),
        ],
    },
    "shipping_costs": {
        "sentiment": "neutral",
        "dialogues": [
            ("How much is delivery to Germany?", ["std"]),
            ("If I order express now, will it arrive tomorrow?", ["express"]),
            ("My order is 80 euros, so why am I being charged for shipping?", ["threshold"]),
            ("Do you deliver to Packstations?", ["packstation"]),
            ("Can you send gas cartridges along with my order?", ["gas"]),
            ("Do you ship to Tenerife?", ["canary"]),
        ],
        "replies": {
            "std": ["Standard delivery within the EU costs 4.95 EUR and is free from an order value "
                    "of 75 EUR. Delivery within Germany takes 1-3 business days."],
            "express": ["If you order before 14:00 CET, express delivers the next business day to "
                        "addresses in Germany and Austria. It costs 14.90 EUR."],
            "threshold": ["You've selected express shipping, which always costs 14.90 EUR - free "
                          "shipping from 75 EUR applies to standard delivery only."],
            "packstation": ["Yes, standard parcels within Germany can go to a DHL Packstation - just "
                            "enter your Postnummer in the address field. Express can't be delivered "
                            "to a Packstation."],
            "gas": ["Sorry, gas cartridges and fuel are dangerous goods and can't be shipped. You can "
                    "buy them in our stores or reserve them with click & collect."],
            "canary": ["Unfortunately we can't ship to the Canary Islands, as they are outside the EU "
                       "VAT area."],
        },
        "followups": [
            ("Is Saturday delivery possible with express?",
             "No, express isn't delivered on Saturdays. An express order placed on Friday after "
             "14:00 arrives on Tuesday."),
            ("OK, and how long does standard delivery to Italy take?",
             "To other EU countries standard delivery takes 3-6 business days after dispatch."),
        ],
    },
    "international": {
        "sentiment": "neutral",
        "dialogues": [
            ("Do you ship to Switzerland, and will I have to pay customs?", ["ch"]),
            ("Can I order from the US? I'd love to get your Cirrus tent.", ["us"]),
            ("What does shipping to the UK cost?", ["uk"]),
            ("I live in Oslo. Can I get express delivery?", ["no"]),
        ],
        "replies": {
            "ch": ["Yes, shipping to Switzerland costs 9.95 EUR and is free from 150 EUR. The price "
                   "at checkout already includes Swiss VAT and duties, so there's nothing to pay on "
                   "delivery."],
            "us": ["I'm sorry, we currently only ship within Europe, so we can't deliver to the "
                   "US."],
            "uk": ["Shipping to the UK costs 19.95 EUR and takes 5-8 business days. Import VAT, "
                   "duties and a handling fee are collected by the carrier on delivery."],
            "no": ["Express isn't available for Norway, I'm afraid. Standard shipping costs 19.95 EUR "
                   "and takes 5-8 business days."],
        },
        "followups": [
            ("And what if I need to return something?",
             "Returns from outside the EU are possible, but we can't provide a free label - please "
             "use a tracked service to our returns centre in Augsburg, at your own cost."),
        ],
    },
    "returns_howto": {
        "sentiment": "neutral",
        "dialogues": [
            ("How do I return a pair of trousers? I don't have a printer.", ["qr"]),
            ("Can I return a tent I set up in my living room to check the size?", ["indoor"]),
            ("I bought a knife with an engraving. Can I still send it back?", ["engraved"]),
            ("Can I bring my online order back to the Vienna store?", ["store"]),
            ("How long do I have for a return? My jacket arrived on the 2nd.", ["period"]),
        ],
        "replies": {
            "qr": ["Go to My orders > Return items and choose the QR code - you can show it at any "
                   "DHL drop-off point, no printer needed. The return label is free within the EU."],
            "indoor": ["Yes, pitching it once indoors on a clean floor is fine, as long as it hasn't "
                       "been used outdoors and is complete."],
            "engraved": ["Sorry, personalised items such as engraved knives can't be returned."],
            "store": ["Yes, online orders can be returned at our Munich and Vienna stores. Just bring "
                      "the items and your order number."],
            "period": ["You have 30 days from delivery, so there's plenty of time."],
        },
        "followups": [
            ("And when do I get the money back?",
             "We check returns within 3 business days of arrival and refund within 5 business days "
             "after that, to your original payment method."),
            ("Do I get the shipping costs back as well?",
             "If you return the whole order, the standard shipping cost is refunded too. Express "
             "surcharges aren't refunded."),
        ],
    },
    "exchange": {
        "sentiment": "neutral",
        "dialogues": [
            ("The boots are half a size too small. Can I swap them for a 43?", ["size"]),
            ("Can I exchange my jacket for a different model?", ["model"]),
            ("I'd like the same fleece in green instead of grey. Is the exchange free?", ["size"]),
            ("Can I exchange something in the Zurich store? I ordered online and it was delivered to "
             "Basel.", ["zurich"]),
        ],
        "replies": {
            "size": ["Of course! Go to My orders > Exchange and pick the new size or colour. We "
                     "reserve it right away and ship it as soon as your return parcel gets its first "
                     "scan. The first exchange is free."],
            "model": ["Exchanges are for the same product in another size or colour. For a different "
                      "model, please return it for a refund and place a new order - that's the "
                      "fastest way."],
            "zurich": ["Yes - the Zurich store can exchange online orders delivered to Switzerland, "
                       "as long as your size is in stock there. Bring the item and your order "
                       "number."],
        },
        "followups": [
            ("What if the new size is sold out?",
             "Then the exchange button shows 'not in stock'. You can sign up for the back-in-stock "
             "email or return the item for a refund."),
        ],
    },
    "payment": {
        "sentiment": "neutral",
        "dialogues": [
            ("Do you accept Bitcoin?", ["crypto"]),
            ("Can I pay when the parcel is delivered?", ["cod"]),
            ("Why can't I choose Klarna invoice? I live in Belgium.", ["klarna"]),
            ("My card keeps getting declined at checkout.", ["declined"]),
            ("When will my card be charged? I ordered yesterday.", ["charge"]),
        ],
        "replies": {
            "crypto": ["Sorry, we don't accept cryptocurrencies. You can pay with Visa, Mastercard, "
                       "American Express, PayPal, Apple Pay, Google Pay or Klarna invoice."],
            "cod": ["We don't offer cash on delivery, I'm afraid. If you'd like to pay after receiving "
                    "your order, Klarna invoice gives you 30 days to pay (for addresses in Germany, "
                    "Austria and the Netherlands)."],
            "klarna": ["Klarna invoice is only available for delivery addresses in Germany, Austria "
                       "and the Netherlands, for orders between 10 and 1,500 EUR."],
            "declined": ["Please check the card details and that the billing address matches your "
                         "bank's records. Some banks also block online payments - your bank can tell "
                         "you why. PayPal is a good alternative."],
            "charge": ["The amount is only reserved when you order; it's charged when the parcel is "
                       "dispatched."],
        },
        "followups": [
            ("Can I pay part of it with a gift card and the rest by card?",
             "Yes, gift cards can be combined with any other payment method."),
        ],
    },
    "gift_card": {
        "sentiment": "neutral",
        "dialogues": [
            ("How long is a Nimbus gift card valid?", ["valid"]),
            ("Can I use my gift card in the Zurich store?", ["zurich"]),
            ("I lost my gift card. Can you replace it?", ["lost"]),
            ("Can I schedule an e-gift card for my dad's birthday next month?", ["schedule"]),
        ],
        "replies": {
            "valid": ["Gift cards are valid for 3 years from the date of purchase - the expiry date "
                      "is printed on the card."],
            "zurich": ["Unfortunately not - gift cards can be used online and in our Munich and "
                       "Vienna stores only."],
            "lost": ["We can block and replace it if you have the original receipt or order "
                     "confirmation. The new card carries the balance that was left when the old one "
                     "was blocked."],
            "schedule": ["Yes, you can choose a delivery date up to 12 months ahead at checkout."],
        },
        "followups": [
            ("Can I use two gift cards at once?", "Yes, you can use up to 3 gift cards per order."),
        ],
    },
    "password": {
        "sentiment": "neutral",
        "dialogues": [
            ("I can't log in, it says my account is locked.", ["locked"]),
            ("The password reset email never arrives.", ["noemail"]),
            ("The reset link says it has expired, but I clicked it straight away!", ["expired"]),
            ("How do I change the email address on my account?", ["email"]),
        ],
        "replies": {
            "locked": ["After 5 failed attempts the account is locked for 30 minutes. You can also "
                       "reset your password now, which unlocks it immediately."],
            "noemail": ["Please check your spam folder and give it about 10 minutes - some providers "
                        "are slow. Also make sure it's the address you registered with; guest orders "
                        "don't create an account."],
            "expired": ["Reset links are valid for 60 minutes and only the newest one works - if you "
                        "requested more than one, please use the latest email."],
            "email": ["Go to My account > Personal details, enter the new address and your current "
                      "password. You'll get a confirmation link at the new address."],
        },
        "followups": [
            ("Will I still see my old guest orders?",
             "Yes - if you create the account with the same email address, guest orders from the "
             "last 12 months are added automatically."),
        ],
    },
    "trail_points": {
        "sentiment": "neutral",
        "dialogues": [
            ("How do the Trail Points work?", ["how"]),
            ("The points from last week's order aren't showing in my account.", ["when"]),
            ("I have 1,200 points. How do I use them?", ["redeem"]),
            ("Can I use my points voucher together with my student discount?", ["combine"]),
        ],
        "replies": {
            "how": ["You get 1 point for every euro spent on products, and 500 points can be "
                    "exchanged for a 10 EUR voucher."],
            "when": ["Points for online orders are added 30 days after delivery, once the return "
                     "period is over."],
            "redeem": ["Under My account > Trail Points, click Redeem - every 500 points become a "
                       "10 EUR voucher, so you can get two vouchers now."],
            "combine": ["Sorry, a points voucher can't be combined with other discount codes. You can "
                        "combine it with a gift card, though."],
        },
        "followups": [
            ("Do the points expire?",
             "Only if you don't make any purchase for 24 months - and we remind you by email 30 days "
             "before."),
        ],
    },
    "price_match": {
        "sentiment": "neutral",
        "dialogues": [
            ("I found the trekking poles I want 20 euros cheaper at another outdoor shop. Do you "
             "price match?", ["yes"]),
            ("It's cheaper on eBay - can you match that?", ["marketplace"]),
            ("I bought a headlamp last week and now it's cheaper on your own site. Can I get the "
             "difference?", ["own"]),
        ],
        "replies": {
            "yes": ["Yes, if it's the identical product from an authorised EU retailer, in stock and "
                    "publicly visible. Send me the link and I'll check it."],
            "marketplace": ["Sorry, we don't match marketplace sellers such as eBay or third-party "
                            "sellers on Amazon."],
            "own": ["I'm sorry, we don't refund the difference when our own price drops after a "
                    "purchase."],
        },
        "followups": [
            ("OK, here's the link to the other shop.",
             "Thanks! It qualifies - I've sent you a personal discount code for the difference. It's "
             "valid for 24 hours."),
        ],
    },
    "store_hours": {
        "sentiment": "neutral",
        "dialogues": [
            ("What time does the Munich store open on Saturday?", ["munich"]),
            ("Are you open late in Zurich on any day?", ["zurich"]),
            ("Is the Vienna store open on Sundays?", ["vienna"]),
            ("Can I pay with euro cash at the Zurich shop?", ["chf"]),
            ("Which of your stores has the foot scanner for boots?", ["scanner"]),
        ],
        "replies": {
            "munich": ["On Saturdays the Munich store is open from 9:30 to 18:00."],
            "zurich": ["Yes, on Thursdays the Zurich store is open until 21:00."],
            "vienna": ["No, all our stores are closed on Sundays and public holidays. Vienna is open "
                       "Monday to Friday 10:00-19:00 and Saturday 9:30-18:00."],
            "chf": ["In Zurich prices are in CHF - we accept cash in CHF, cards, TWINT, Apple Pay and "
                    "Google Pay, but not euro cash."],
            "scanner": ["The 3D foot scanner is in the boot fitting studio of our Zurich store."],
        },
        "followups": [
            ("Are you open on Christmas Eve?", "Yes, on 24 December all stores are open from 9:00 to "
                                                "14:00."),
        ],
    },
    "rental": {
        "sentiment": "neutral",
        "dialogues": [
            ("Can I rent a tent for a weekend in August?", ["weekend"]),
            ("Do I have to pay a deposit to rent the family tent?", ["deposit"]),
            ("I need to cancel my rental reservation for tomorrow.", ["cancel"]),
            ("Can I rent gear in Zurich?", ["zurich"]),
        ],
        "replies": {
            "weekend": ["Yes, in our Munich and Vienna stores. The Cirrus 2 costs 12 EUR per day; "
                        "pick it up on Friday after 14:00, bring it back Monday before 12:00, and we "
                        "only charge 2 days."],
            "deposit": ["Yes, 150 EUR for tents, reserved on a credit card in your name. We can't "
                        "take cash or debit cards for deposits."],
            "cancel": ["Cancellation is free until 48 hours before pickup. As your pickup is "
                       "tomorrow, we have to charge 50% of the rental fee, I'm afraid."],
            "zurich": ["Sorry, rentals are only available in our Munich and Vienna stores."],
        },
        "followups": [
            ("If I like the tent, can I buy it afterwards?",
             "Yes - if you buy the same model new within 14 days of returning it, we credit the "
             "rental fee for up to 3 days."),
        ],
    },
    "care": {
        "sentiment": "neutral",
        "dialogues": [
            ("How should I wash my down sleeping bag?", ["down"]),
            ("My rain jacket doesn't bead water anymore. Is it broken?", ["dwr"]),
            ("Can I put my tent in the washing machine? It's covered in mud.", ["tent"]),
        ],
        "replies": {
            "down": ["Use a front-loading machine on the gentle cycle at 30 degrees with down "
                     "detergent and an extra rinse, then tumble dry on low with 2-3 clean tennis "
                     "balls until there are no clumps left. That can take 3-4 hours."],
            "dwr": ["Probably not - it usually just needs a wash. Wash it at 30 degrees with a liquid "
                    "technical wash, then tumble dry on low for 20 minutes. If water still doesn't "
                    "bead, re-proof it with a spray-on DWR."],
            "tent": ["Please don't - a washing machine damages the waterproof coating. Clean it by "
                     "hand with lukewarm water and a soft sponge, without detergent, and let it dry "
                     "completely."],
        },
        "followups": [
            ("Do you offer a cleaning service?",
             "Yes, our Munich workshop offers a professional down wash for 39 EUR and a wash and "
             "re-proof for waterproof jackets for 25 EUR."),
        ],
    },
    "size": {
        "sentiment": "neutral",
        "dialogues": [
            ("I'm a man with a 104 cm chest. Which size Nimbus jacket should I get?", ["jacket"]),
            ("Which trouser length should I take? My inside leg is 85 cm.", ["trousers"]),
            ("My foot is 26.5 cm long. Is that an EU 42?", ["boots"]),
        ],
        "replies": {
            "jacket": ["With a 104 cm chest, size L (103-108 cm) is right for you. If you're between "
                       "sizes and want to wear a fleece under a shell, take the larger one."],
            "trousers": ["Our trousers come in short (76 cm), regular (81 cm) and long (86 cm) inside "
                         "leg, so the long version suits you best."],
            "boots": ["Yes - 26.5 cm is between a 41 and a 42, and in that case we recommend the "
                      "larger size. You should have about 1 cm of space in front of your toes."],
        },
        "followups": [
            ("And if it doesn't fit?", "No problem - your first exchange is free."),
        ],
    },
    "click_collect": {
        "sentiment": "neutral",
        "dialogues": [
            ("Can I order online and pick it up in Vienna today?", ["today"]),
            ("Can my husband pick up my click & collect order?", ["someone"]),
            ("Is click and collect available in Zurich?", ["zurich"]),
        ],
        "replies": {
            "today": ["Yes, if the items are in stock in Vienna, your order is ready within 4 hours "
                      "during opening hours. Wait for the 'Ready for pickup' email with your code."],
            "someone": ["Yes, he just needs the pickup code and to know the name on the order."],
            "zurich": ["Unfortunately not - click & collect is only available in Munich and "
                       "Vienna."],
        },
        "followups": [
            ("How long will you keep it for me?", "We hold click & collect orders for 7 days."),
        ],
    },
    "praise": {
        "sentiment": "positive",
        "dialogues": [
            ("Just wanted to say thank you - the exchange was super quick, the new boots arrived "
             "before I'd even dropped off the old ones!", ["thanks"]),
            ("Your workshop fixed the zipper on my 8-year-old jacket and it's like new. Great "
             "service!", ["thanks"]),
            ("Thanks to the lady in the Vienna store who helped me choose a sleeping bag. I slept "
             "warm at minus 3 in the Dolomites!", ["thanks"]),
            ("The Cirrus 2 is fantastic - it survived a stormy night in Norway without a single drop "
             "inside. Thank you!", ["thanks"]),
            ("Amazing, the parcel arrived the next morning with express. Exactly what I needed.",
             ["thanks"]),
        ],
        "replies": {
            "thanks": [
                "Thank you so much for your kind words, {first}! I'll pass them on to the team - it "
                "really makes our day.",
                "That's great to hear! Enjoy your adventures, and thanks for taking the time to "
                "write to us.",
            ],
        },
        "followups": [
            ("Will do! Already planning the next trip.",
             "Sounds great - have a wonderful time out there!"),
        ],
        "closings": ["Thanks again, keep it up!"],
    },
}

# How many conversations of each topic to generate in the regular 14-day mix.
BASE_MIX = {
    "late_delivery": 3, "refund_delay": 3, "tent_zipper": 4, "damaged_item": 1,
    "tracking": 4, "change_order": 2, "shipping_costs": 4, "international": 2,
    "returns_howto": 4, "exchange": 2, "payment": 4, "gift_card": 2, "password": 2,
    "trail_points": 2, "price_match": 1, "store_hours": 2, "rental": 2, "care": 1,
    "size": 1, "click_collect": 1, "praise": 3,
}
# Extra e-mail complaints on SPIKE_DAY (DHL sorting-centre backlog).
SPIKE_MIX = {"late_delivery": 7, "refund_delay": 2, "tent_zipper": 1}
# Complaints cluster in the second week.
TOPIC_DAYS = {
    "late_delivery": (date(2026, 11, 16), date(2026, 11, 21)),
    "tent_zipper": (date(2026, 11, 12), date(2026, 11, 21)),
}
CHANNEL_WEIGHTS = {"chat": 0.55, "email": 0.3, "phone": 0.15}
LENGTH_WEIGHTS = {2: 0.1, 3: 0.15, 4: 0.35, 5: 0.2, 6: 0.2}


def all_days():
    day = FIRST_DAY
    while day <= LAST_DAY:
        yield day
        day += timedelta(days=1)


def pick_day(rng: random.Random, topic: str) -> date:
    start, end = TOPIC_DAYS.get(topic, (FIRST_DAY, LAST_DAY))
    days = [d for d in all_days() if start <= d <= end]
    weights = [0.35 if d.weekday() == 6 else 0.7 if d.weekday() == 5 else 1.0 for d in days]
    return rng.choices(days, weights)[0]


def pick_channel(rng: random.Random, day: date) -> str:
    channel = rng.choices(list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values()))[0]
    if day.weekday() == 6:          # chat and phone are closed on Sundays
        return "email"
    if day.weekday() == 5 and channel == "phone":   # phone is closed on Saturdays
        return "chat"
    return channel


def start_time(rng: random.Random, day: date, channel: str) -> datetime:
    # Opening hours in CET (UTC+1 in November), expressed in UTC.
    hours = {"chat": (7, 18), "phone": (8, 16), "email": (5, 21)}[channel]
    hour = rng.randint(*hours)
    return datetime(day.year, day.month, day.day, hour, rng.randint(0, 59), tzinfo=timezone.utc)


def gap(rng: random.Random, channel: str, to_role: str) -> timedelta:
    if channel == "chat":
        return timedelta(seconds=rng.randint(40, 300))
    if channel == "phone":
        return timedelta(seconds=rng.randint(20, 110))
    if to_role == "agent":
        return timedelta(minutes=rng.randint(45, 420))
    return timedelta(minutes=rng.randint(20, 300))


def wrap_email(text: str, role: str, first_message: bool, person: dict) -> str:
    """Give e-mail messages a greeting and signature, as real e-mails have."""
    if role == "customer":
        if not first_message:
            return f"{text}\n\n{person['first']}"
        if text.startswith(("Hi,", "Hello,")):
            greeting, text = text.split(",", 1)[0] + ",", text.split(",", 1)[1].strip()
            text = text[0].upper() + text[1:]
        else:
            greeting = person["greeting"]
        return f"{greeting}\n\n{text}\n\n{person['signoff']}\n{person['first']} {person['last']}"
    if first_message:
        return (f"Dear {person['first']},\n\n{text}\n\nKind regards,\n{person['agent']}\n"
                "Nimbus Gear Customer Service")
    return f"Hi {person['first']},\n\n{text}\n\nBest,\n{person['agent']}"


def office_hours(rng: random.Random, when: datetime) -> datetime:
    """Agents answer e-mails between 07:00 and 19:00 UTC (08:00-20:00 CET)."""
    if when.hour < 7:
        return when.replace(hour=7, minute=rng.randint(0, 59))
    if when.hour >= 19:
        return (when + timedelta(days=1)).replace(hour=7, minute=rng.randint(0, 59))
    return when


def build_messages(rng: random.Random, topic_name: str, length: int, fields: dict) -> list:
    topic = TOPICS[topic_name]
    opener, reply_keys = rng.choice(topic["dialogues"])
    reply = rng.choice(topic["replies"][rng.choice(reply_keys)])
    messages = [("customer", opener), ("agent", reply)]
    closings = topic.get("closings", NEUTRAL_CLOSINGS)
    signoffs = topic.get("signoffs", NEUTRAL_SIGNOFFS)
    if length == 3:
        messages.append(("customer", rng.choice(closings)))
    elif length >= 4:
        follow_q, follow_a = rng.choice(topic["followups"])
        messages += [("customer", follow_q), ("agent", follow_a)]
        if length >= 5:
            messages.append(("customer", rng.choice(closings)))
        if length == 6:
            messages.append(("agent", rng.choice(signoffs)))
    return [(role, text.format(**fields)) for role, text in messages]


def main() -> None:
    rng = random.Random(SEED)
    plan = []
    for topic, count in BASE_MIX.items():
        for _ in range(count):
            day = pick_day(rng, topic)
            plan.append((topic, day, pick_channel(rng, day)))
    for topic, count in SPIKE_MIX.items():
        for _ in range(count):
            plan.append((topic, SPIKE_DAY, "email"))

    conversations = []
    for topic, day, channel in plan:
        first, last = rng.choice(CUSTOMER_NAMES)
        agent = rng.choice(AGENTS)
        length = rng.choices(list(LENGTH_WEIGHTS), list(LENGTH_WEIGHTS.values()))[0]
        returned = day - timedelta(days=rng.randint(8, 16))
        fields = {
            "order": f"NG-{rng.randint(10_000_000, 19_999_999)}",
            "first": first,
            "date": f"{returned.day} {returned.strftime('%B')}",
        }
        messages = build_messages(rng, topic, length, fields)
        person = {
            "first": first, "last": last, "agent": agent,
            "greeting": rng.choice(["Hello,", "Hi,", "Dear Nimbus Gear team,", "Hello Nimbus team,"]),
            "signoff": rng.choice(["Regards,", "Best regards,", "Thanks,", "Cheers,"]),
        }
        start = start_time(rng, day, channel)
        times = [start]
        for role, _ in messages[1:]:
            when = times[-1] + gap(rng, channel, role)
            if channel == "email" and role == "agent":
                when = office_hours(rng, when)
            times.append(when)
        if times[-1] > END_OF_DATA:
            # Squeeze conversations that started late on the last day into the window.
            scale = (END_OF_DATA - start) / (times[-1] - start)
            times = [start + (t - start) * scale for t in times]
            times = [t.replace(second=0, microsecond=0) if channel == "email" else
                     t.replace(microsecond=0) for t in times]
        rows = []
        for index, ((role, text), when) in enumerate(zip(messages, times)):
            if channel == "email":
                text = wrap_email(text, role, index < 2, person)
            rows.append([when, role, text, channel])
        conversations.append(rows)

    conversations.sort(key=lambda rows: rows[0][0])
    with OUTPUT.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["conversation_id", "timestamp", "role", "text", "channel"])
        for number, rows in enumerate(conversations, start=1):
            for when, role, text, channel in rows:
                writer.writerow([f"conv-{number:04d}", when.isoformat(), role, text, channel])
    total = sum(len(rows) for rows in conversations)
    print(f"wrote {OUTPUT.name}: {len(conversations)} conversations, {total} messages")


if __name__ == "__main__":
    main()
