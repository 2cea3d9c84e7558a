"""``record-training``: a branch admin records that a staff member completed a course; it pays once per course.

payload = [staff: bin32, course_id: str]; events = credit events + ["trained", staff, course_id, reward].
The marker ``b"z" + staff + course_id`` (``ledger.tickets.training_key``) is what makes the reward once-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import lots, reasons
from ledger.events import Event, Trained
from ledger.orders import verify_id
from ledger.process.common import TxContext, get_policy_value, verify_role, verify_rule
from ledger.process.payload import Account, Id, arg, declare_kind
from ledger.state import has_role
from ledger.tickets import Reward, get_reward, set_reward, training_key

KIND = "record-training"


@dataclass(frozen=True, slots=True)
class RecordTraining:
    """A record-training payload."""

    staff: Account = arg("The staff member's account id (64 hex digits).")
    course_id: Id = arg("The course completed.")


def process_record_training(ctx: TxContext, tx: RecordTraining) -> list[Event]:
    """Credit ``training_reward`` to a staff member for a course, once; raise ``TxFailure`` if refused."""
    # Only a branch admin records training
    verify_role(ctx, "branch-admin")
    # The course id is usable as a key
    verify_id("course id", tx.course_id)
    # The trainee holds the staff role
    verify_rule(has_role(ctx.state, "staff", tx.staff), reasons.NOT_STAFF,
                f"trainee {tx.staff.hex()[:16]}… does not hold the 'staff' role")
    # A course is rewarded once per staff member
    key = training_key(tx.staff, tx.course_id)
    previous = get_reward(ctx.state, key)
    verify_rule(previous is None, reasons.ALREADY_REWARDED,
                f"course {tx.course_id!r} was rewarded to {tx.staff.hex()[:16]}… at "
                f"{previous.at if previous else 0}; a course pays once")

    reward = get_policy_value(ctx, "training_reward")
    events = lots.credit(ctx, tx.staff, reward, "reward") if reward else []
    set_reward(ctx.state, key, Reward(tx.staff, reward, ctx.timestamp_ms))
    return events + [Trained(tx.staff, tx.course_id, reward)]


SPECS = (declare_kind(KIND, RecordTraining, process_record_training, senders="branch admin",
                      help="Record a completed training course; rewards the staff member once (branch admin)."),)
