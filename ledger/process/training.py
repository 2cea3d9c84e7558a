"""``record-training``: staff or an admin of the trainee's branch records a completed catalogue course; it pays
the course's reward once per (trainee, course).

payload = [staff: bin32, course_id: str]; events = credit events + ["trained", staff, course_id, reward].
The catalogue (course -> reward) is decided by governance (``propose-training-course``); a course not in it
fails ``unknown_course``, so nobody invents courses to pay themselves. Separation of duties: the recorder is
not the trainee (``self_dealing``) and acts only for staff of their own branch (``wrong_branch``). The marker
``b"z" + staff + course_id`` (``ledger.tickets.training_key``) is what makes the reward once-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import lots, reasons
from ledger.customers import get_branch_of
from ledger.events import Event, Trained
from ledger.orders import verify_id
from ledger.process.common import (
    TxContext, verify_any_role, verify_not_self, verify_own_branch, verify_rule,
)
from ledger.process.decisions import get_course_reward
from ledger.process.payload import Account, Id, arg, declare_kind
from ledger.reasons import TxFailure
from ledger.state import has_role
from ledger.tickets import Reward, get_reward, set_reward, training_key

KIND = "record-training"


@dataclass(frozen=True, slots=True)
class RecordTraining:
    """A record-training payload."""

    staff: Account = arg("The staff member's account id (64 hex digits).")
    course_id: Id = arg("The catalogue course completed.")


def process_record_training(ctx: TxContext, tx: RecordTraining) -> list[Event]:
    """Credit a catalogue course's reward to a staff member, once; raise ``TxFailure`` if refused."""
    # Only staff or a branch admin record training
    verify_any_role(ctx, "staff", "branch-admin")
    # The course id is usable as a key
    verify_id("course id", tx.course_id)
    # The course is in the catalogue governance decided
    reward = get_course_reward(ctx.state, tx.course_id)
    if reward is None:
        raise TxFailure(reasons.UNKNOWN_COURSE, f"course {tx.course_id!r} is not in the training catalogue")
    # The trainee holds the staff role
    verify_rule(has_role(ctx.state, "staff", tx.staff), reasons.NOT_STAFF,
                f"trainee {tx.staff.hex()[:16]}… does not hold the 'staff' role")
    # Nobody records their own training
    verify_not_self(ctx, tx.staff, "record training")
    # The trainee is staff of the recorder's branch
    verify_own_branch(ctx, get_branch_of(ctx.state, tx.staff), f"trainee {tx.staff.hex()[:16]}…")
    # A course is rewarded once per staff member
    key = training_key(tx.staff, tx.course_id)
    previous = get_reward(ctx.state, key)
    verify_rule(previous is None, reasons.ALREADY_REWARDED,
                f"course {tx.course_id!r} was rewarded to {tx.staff.hex()[:16]}… at "
                f"{previous.at if previous else 0}; a course pays once")

    events = lots.credit(ctx, tx.staff, reward, "reward") if reward else []
    set_reward(ctx.state, key, Reward(tx.staff, reward, ctx.timestamp_ms))
    return events + [Trained(tx.staff, tx.course_id, reward)]


SPECS = (declare_kind(KIND, RecordTraining, process_record_training, senders="staff or admin of the trainee's branch",
                      help="Record a completed catalogue course for a staff member of your branch; pays once."),)
