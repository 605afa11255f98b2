//! The leader's incremental cooperative assignment (KIP-415), ported from Kafka Connect's
//! `IncrementalCooperativeAssignor.performTaskAssignment`: from what every member reports it
//! runs and what is configured, work out what was deleted, lost (its worker left) and is new;
//! revoke deleted and duplicated work, and — only when no delayed rebalance is pending — enough
//! work from loaded workers for empty ones to take; hold lost work back for the scheduled
//! delay, then hand it out; assign new work round-robin to the least loaded workers. Each
//! member gets only what it must start and what it must stop: nothing else stops. One
//! difference: with `scheduled.rebalance.max.delay.ms=0`, lost work is reassigned in the same
//! rebalance.

use std::collections::{BTreeMap, BTreeSet};

use super::wire::Units;

/// A task: connector and task number.
pub type TaskId = (String, i32);

/// Connectors and tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Connector instances.
    pub connectors: BTreeSet<String>,
    /// Tasks.
    pub tasks: BTreeSet<TaskId>,
}

impl Work {
    /// From Connect's wire form (task id -1 is the connector itself).
    pub fn from_units(units: &Units) -> Work {
        let mut w = Work::default();
        for (c, ids) in units {
            for &t in ids {
                if t < 0 {
                    w.connectors.insert(c.clone());
                } else {
                    w.tasks.insert((c.clone(), t));
                }
            }
        }
        w
    }

    /// To Connect's wire form.
    pub fn to_units(&self) -> Units {
        let mut by: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for c in &self.connectors {
            by.entry(c).or_default().push(-1);
        }
        for (c, t) in &self.tasks {
            by.entry(c).or_default().push(*t);
        }
        by.into_iter().map(|(c, t)| (c.to_string(), t)).collect()
    }

    /// `self` without `other`.
    pub fn without(&self, other: &Work) -> Work {
        self.minus(&[other])
    }

    /// `self` and `other`.
    pub fn with(mut self, other: &Work) -> Work {
        self.add(other);
        self
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty() && self.tasks.is_empty()
    }

    /// `self` without everything in `others`.
    fn minus(&self, others: &[&Work]) -> Work {
        let mut w = self.clone();
        for o in others {
            w.connectors.retain(|c| !o.connectors.contains(c));
            w.tasks.retain(|t| !o.tasks.contains(t));
        }
        w
    }

    fn add(&mut self, other: &Work) {
        self.connectors.extend(other.connectors.iter().cloned());
        self.tasks.extend(other.tasks.iter().cloned());
    }
}

/// One member's part of an assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPlan {
    /// What it starts.
    pub assigned: Work,
    /// What it stops.
    pub revoked: Work,
}

/// A whole assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Per member id.
    pub members: BTreeMap<String, MemberPlan>,
    /// Milliseconds until the follow-up rebalance that hands out lost work (0: none).
    pub delay_ms: i32,
}

/// One worker's load while assigning (ordered lists, as Java's `WorkerLoad`).
#[derive(Debug, Clone)]
struct Load {
    worker: String,
    connectors: Vec<String>,
    tasks: Vec<TaskId>,
}

impl Load {
    fn size(&self) -> usize {
        self.connectors.len() + self.tasks.len()
    }
}

/// The leader's memory between rebalances.
#[derive(Debug, Clone)]
pub struct Assignor {
    /// `scheduled.rebalance.max.delay.ms`.
    max_delay_ms: i32,
    previous: Work,
    previous_revocation: Work,
    previous_generation: i32,
    previous_members: BTreeSet<String>,
    /// When the delayed rebalance is due (ms; 0: none scheduled).
    scheduled: u64,
    delay: i32,
    candidates: BTreeSet<String>,
}

impl Assignor {
    /// A leader that has assigned nothing yet.
    pub fn new(max_delay_ms: i32) -> Assignor {
        Assignor {
            max_delay_ms: max_delay_ms.max(0),
            previous: Work::default(),
            previous_revocation: Work::default(),
            previous_generation: -1,
            previous_members: BTreeSet::new(),
            scheduled: 0,
            delay: 0,
            candidates: BTreeSet::new(),
        }
    }

    /// Assigns `configured` work over `members` (member id → what it reports running) in
    /// `generation`, the last completed one being `last_completed`, at `now_ms`.
    pub fn assign(
        &mut self,
        members: &BTreeMap<String, Work>,
        configured: &Work,
        generation: i32,
        last_completed: i32,
        now_ms: u64,
    ) -> Plan {
        if self.previous_generation != last_completed {
            self.previous = Work::default();
        }
        let mut active = Work::default();
        for w in members.values() {
            active.add(w);
        }
        if !self.previous_revocation.is_empty() {
            let r = &self.previous_revocation;
            if r.connectors.iter().any(|c| active.connectors.contains(c))
                || r.tasks.iter().any(|t| active.tasks.contains(t))
            {
                self.previous = active.clone();
            }
            self.previous_revocation = Work::default();
        }
        let deleted = self.previous.minus(&[configured]);
        let lost = self.previous.minus(&[&active, &deleted]);
        let mut new = configured.minus(&[&self.previous, &active]);

        let complete_all = loads(members, &Work::default());
        let mut revoke = owners_of(&deleted, &complete_all);
        for (m, w) in duplicated(members, &complete_all) {
            revoke.entry(m).or_default().add(&w);
        }
        let without_dup = remove(loads(members, &deleted), &revoke);
        let mut complete = loads(members, &deleted);
        self.handle_lost(&lost, &mut new, &mut complete, members, now_ms);
        if self.delay == 0 {
            for (m, w) in revocation(configured, &without_dup) {
                revoke.entry(m).or_default().add(&w);
            }
        }
        let current = loads(members, &deleted);
        assign_round_robin(
            &mut complete,
            &new.connectors,
            |l| &mut l.connectors,
            |l| l.connectors.len(),
        );
        assign_round_robin(
            &mut complete,
            &new.tasks,
            |l| &mut l.tasks,
            |l| l.tasks.len(),
        );

        let mut plan = BTreeMap::new();
        for id in members.keys() {
            let now = complete.iter().find(|l| &l.worker == id);
            let before = current.iter().find(|l| &l.worker == id);
            let mut assigned = Work::default();
            if let Some(n) = now {
                let had = |c: &String| before.is_some_and(|b| b.connectors.contains(c));
                assigned.connectors = n.connectors.iter().filter(|c| !had(c)).cloned().collect();
                let had_t = |t: &TaskId| before.is_some_and(|b| b.tasks.contains(t));
                assigned.tasks = n.tasks.iter().filter(|t| !had_t(t)).cloned().collect();
            }
            let revoked = revoke.get(id).cloned().unwrap_or_default();
            plan.insert(id.clone(), MemberPlan { assigned, revoked });
        }
        self.remember(&revoke, &complete, &lost, generation, members);
        Plan {
            members: plan,
            delay_ms: self.delay,
        }
    }

    /// `computePreviousAssignment`: what is assigned after this round, without what was
    /// revoked, plus what is lost (still expected back).
    fn remember(
        &mut self,
        revoke: &BTreeMap<String, Work>,
        complete: &[Load],
        lost: &Work,
        generation: i32,
        members: &BTreeMap<String, Work>,
    ) {
        let mut prev = Work::default();
        for l in complete {
            prev.connectors.extend(l.connectors.iter().cloned());
            prev.tasks.extend(l.tasks.iter().cloned());
        }
        for r in revoke.values() {
            prev = prev.minus(&[r]);
            self.previous_revocation.add(r);
        }
        prev.add(lost);
        self.previous = prev;
        self.previous_generation = generation;
        self.previous_members = members.keys().cloned().collect();
    }

    /// `handleLostAssignments`: lost work waits for its worker to come back until the delay
    /// expires, then goes to the workers that were empty meanwhile (or counts as new).
    fn handle_lost(
        &mut self,
        lost: &Work,
        new: &mut Work,
        complete: &mut [Load],
        members: &BTreeMap<String, Work>,
        now: u64,
    ) {
        if lost.is_empty() {
            self.reset_delay();
            return;
        }
        let all_back = self
            .previous_members
            .iter()
            .all(|m| members.contains_key(m));
        // With no delay configured, lost work moves in this rebalance (Java schedules a
        // "delayed" rebalance due now, which leaves it unassigned until some later rebalance).
        if (self.scheduled == 0 && all_back) || self.max_delay_ms == 0 {
            new.add(lost);
            return;
        }
        if self.scheduled > 0 && now >= self.scheduled {
            let mut picked: Vec<&mut Load> = complete
                .iter_mut()
                .filter(|l| self.candidates.contains(&l.worker))
                .collect();
            if picked.is_empty() {
                new.add(lost);
            } else {
                let n = picked.len();
                for (i, c) in lost.connectors.iter().enumerate() {
                    picked[i % n].connectors.push(c.clone());
                }
                for (i, t) in lost.tasks.iter().enumerate() {
                    picked[i % n].tasks.push(t.clone());
                }
            }
            self.reset_delay();
            return;
        }
        self.candidates.extend(
            complete
                .iter()
                .filter(|l| l.size() == 0)
                .map(|l| l.worker.clone()),
        );
        self.delay = if now < self.scheduled {
            ((self.scheduled - now) as i64).min(self.max_delay_ms as i64) as i32
        } else {
            self.max_delay_ms
        };
        self.scheduled = now + self.delay as u64;
    }

    fn reset_delay(&mut self) {
        self.candidates.clear();
        self.scheduled = 0;
        self.delay = 0;
    }
}

/// Every member's load, without `exclude`.
fn loads(members: &BTreeMap<String, Work>, exclude: &Work) -> Vec<Load> {
    members
        .iter()
        .map(|(id, w)| Load {
            worker: id.clone(),
            connectors: w
                .connectors
                .iter()
                .filter(|c| !exclude.connectors.contains(*c))
                .cloned()
                .collect(),
            tasks: w
                .tasks
                .iter()
                .filter(|t| !exclude.tasks.contains(*t))
                .cloned()
                .collect(),
        })
        .collect()
}

/// Who runs each piece of `work`, as revocations.
fn owners_of(work: &Work, loads: &[Load]) -> BTreeMap<String, Work> {
    let mut out: BTreeMap<String, Work> = BTreeMap::new();
    for l in loads {
        for c in l.connectors.iter().filter(|c| work.connectors.contains(*c)) {
            out.entry(l.worker.clone())
                .or_default()
                .connectors
                .insert(c.clone());
        }
        for t in l.tasks.iter().filter(|t| work.tasks.contains(*t)) {
            out.entry(l.worker.clone())
                .or_default()
                .tasks
                .insert(t.clone());
        }
    }
    out
}

/// Work reported by more than one member: revoked from every one of them.
fn duplicated(members: &BTreeMap<String, Work>, loads: &[Load]) -> BTreeMap<String, Work> {
    let mut seen_c: BTreeMap<&String, usize> = BTreeMap::new();
    let mut seen_t: BTreeMap<&TaskId, usize> = BTreeMap::new();
    for w in members.values() {
        w.connectors
            .iter()
            .for_each(|c| *seen_c.entry(c).or_default() += 1);
        w.tasks
            .iter()
            .for_each(|t| *seen_t.entry(t).or_default() += 1);
    }
    let dup = Work {
        connectors: seen_c
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(c, _)| c.clone())
            .collect(),
        tasks: seen_t
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(t, _)| t.clone())
            .collect(),
    };
    owners_of(&dup, loads)
}

/// `loads` without what `revoke` takes from each.
fn remove(mut loads: Vec<Load>, revoke: &BTreeMap<String, Work>) -> Vec<Load> {
    for l in loads.iter_mut() {
        if let Some(r) = revoke.get(&l.worker) {
            l.connectors.retain(|c| !r.connectors.contains(c));
            l.tasks.retain(|t| !r.tasks.contains(t));
        }
    }
    loads
}

/// `performTaskRevocation`: when some workers are empty, revoke from loaded ones down to the
/// new ceiling (never below the floor).
fn revocation(all: &Work, loads: &[Load]) -> BTreeMap<String, Work> {
    let mut out: BTreeMap<String, Work> = BTreeMap::new();
    let existing: Vec<&Load> = loads.iter().filter(|l| l.size() > 0).collect();
    let total = loads.len();
    if existing.is_empty() || existing.len() == total {
        return out;
    }
    let bounds = |n: usize| (n / total, n / total + usize::from(!n.is_multiple_of(total)));
    let (floor_c, ceil_c) = bounds(all.connectors.len());
    let (floor_t, ceil_t) = bounds(all.tasks.len());
    for l in &existing {
        let n = l.connectors.len();
        let k = n.saturating_sub(ceil_c).min(n.saturating_sub(floor_c));
        for c in l.connectors.iter().take(k) {
            out.entry(l.worker.clone())
                .or_default()
                .connectors
                .insert(c.clone());
        }
    }
    for l in &existing {
        let n = l.tasks.len();
        let k = n.saturating_sub(ceil_t).min(n.saturating_sub(floor_t));
        for t in l.tasks.iter().take(k) {
            out.entry(l.worker.clone())
                .or_default()
                .tasks
                .insert(t.clone());
        }
    }
    out
}

/// `assignConnectors`/`assignTasks`: hands `items` out round-robin over the least loaded
/// workers (sorted by load, then id).
fn assign_round_robin<T: Clone>(
    loads: &mut [Load],
    items: &BTreeSet<T>,
    list: impl Fn(&mut Load) -> &mut Vec<T>,
    size: impl Fn(&Load) -> usize,
) {
    if loads.is_empty() || items.is_empty() {
        return;
    }
    loads.sort_by(|a, b| size(a).cmp(&size(b)).then_with(|| a.worker.cmp(&b.worker)));
    let mut it = items.iter().peekable();
    while it.peek().is_some() {
        let first = size(&loads[0]);
        let up_to = loads
            .iter()
            .position(|l| size(l) > first)
            .unwrap_or(loads.len());
        for l in loads.iter_mut().take(up_to) {
            match it.next() {
                Some(x) => list(l).push(x.clone()),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n.max(1)
        }
    }

    fn connector(w: &mut Work, name: &str, tasks: i32) {
        w.connectors.insert(name.into());
        w.tasks.retain(|(c, _)| c != name);
        for t in 0..tasks {
            w.tasks.insert((name.into(), t));
        }
    }

    fn size(w: &Work) -> usize {
        w.connectors.len() + w.tasks.len()
    }

    /// The cluster after one rebalance under `plan`: revocations, then assignments.
    fn apply(members: &mut BTreeMap<String, Work>, plan: &Plan) {
        for (id, p) in &plan.members {
            let w = members.get_mut(id).unwrap();
            *w = w.minus(&[&p.revoked]);
            w.add(&p.assigned);
        }
    }

    /// Rebalances until nothing is revoked and no delay is pending (time jumps over delays);
    /// checks that no round hands out work another member still runs.
    fn settle(
        a: &mut Assignor,
        members: &mut BTreeMap<String, Work>,
        configured: &Work,
        generation: &mut i32,
        now: &mut u64,
    ) {
        for _ in 0..20 {
            let plan = a.assign(members, configured, *generation, *generation - 1, *now);
            for (id, p) in &plan.members {
                for (other, w) in members.iter().filter(|(o, _)| *o != id) {
                    assert!(
                        p.assigned.connectors.is_disjoint(&w.connectors)
                            && p.assigned.tasks.is_disjoint(&w.tasks),
                        "{id} was given work {other} still runs"
                    );
                }
            }
            apply(members, &plan);
            *generation += 1;
            let revoked = plan.members.values().any(|p| !p.revoked.is_empty());
            if plan.delay_ms > 0 {
                *now += plan.delay_ms as u64;
            } else if !revoked {
                return;
            }
        }
        panic!("no stable assignment after 20 rebalances: {members:?}");
    }

    fn check_exactly_once(members: &BTreeMap<String, Work>, configured: &Work) {
        let mut all = Work::default();
        let mut n = 0;
        for w in members.values() {
            all.add(w);
            n += size(w);
        }
        assert_eq!(all, *configured, "everything configured runs, nothing else");
        assert_eq!(n, size(configured), "nothing runs twice");
    }

    #[test]
    fn random_membership_and_config_changes_settle_on_exactly_once() {
        for seed in 1..=80u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            // Half the runs hold lost work back for a delay (time jumps over it).
            let mut a = Assignor::new(if seed % 2 == 0 { 500 } else { 0 });
            let (mut generation, mut now) = (1, 1_000u64);
            let mut members: BTreeMap<String, Work> = BTreeMap::new();
            members.insert("w0".into(), Work::default());
            let mut configured = Work::default();
            let mut next_worker = 1;
            for step in 0..60 {
                match rng.next(6) {
                    0 => {
                        members.insert(format!("w{next_worker}"), Work::default());
                        next_worker += 1;
                    }
                    1 if members.len() > 1 => {
                        let k = members
                            .keys()
                            .nth(rng.next(members.len() as u64) as usize)
                            .cloned();
                        members.remove(&k.unwrap());
                    }
                    2 | 3 => {
                        let name = format!("c{}", rng.next(8));
                        connector(&mut configured, &name, rng.next(5) as i32);
                    }
                    4 => {
                        let name = format!("c{}", rng.next(8));
                        configured.connectors.remove(&name);
                        configured.tasks.retain(|(c, _)| *c != name);
                    }
                    _ => {}
                }
                settle(&mut a, &mut members, &configured, &mut generation, &mut now);
                check_exactly_once(&members, &configured);
                let _ = step;
            }
        }
    }

    #[test]
    fn a_joining_worker_takes_work_without_stopping_the_rest() {
        let mut a = Assignor::new(0);
        let mut configured = Work::default();
        for c in ["a", "b", "c"] {
            connector(&mut configured, c, 3);
        }
        let mut members: BTreeMap<String, Work> = [
            ("w1".to_string(), Work::default()),
            ("w2".to_string(), Work::default()),
        ]
        .into();
        let (mut generation, mut now) = (1, 0);
        settle(&mut a, &mut members, &configured, &mut generation, &mut now);
        let before = members.clone();
        members.insert("w3".into(), Work::default());
        let plan = a.assign(&members, &configured, generation, generation - 1, now);
        // Only what moves to the newcomer is revoked; nobody loses everything.
        let revoked: usize = plan.members.values().map(|p| size(&p.revoked)).sum();
        assert!(revoked > 0 && revoked <= 4, "{plan:?}");
        for (id, w) in &before {
            assert!(size(&w.minus(&[&plan.members[id].revoked])) > 0);
        }
        settle(&mut a, &mut members, &configured, &mut generation, &mut now);
        check_exactly_once(&members, &configured);
        assert!(members.values().all(|w| size(w) >= 3), "{members:?}");
    }

    #[test]
    fn lost_work_waits_for_the_delay_then_moves() {
        let mut a = Assignor::new(1000);
        let mut configured = Work::default();
        connector(&mut configured, "a", 2);
        connector(&mut configured, "b", 2);
        let mut members: BTreeMap<String, Work> = (1..=3)
            .map(|i| (format!("w{i}"), Work::default()))
            .collect();
        let (mut generation, mut now) = (1, 10_000);
        settle(&mut a, &mut members, &configured, &mut generation, &mut now);
        let gone = members.remove("w2").unwrap();
        assert!(!gone.is_empty());
        let plan = a.assign(&members, &configured, generation, generation - 1, now);
        assert_eq!(plan.delay_ms, 1000, "lost work is held back");
        assert!(plan.members.values().all(|p| p.assigned.is_empty()));
        apply(&mut members, &plan);
        generation += 1;
        now += 400;
        let plan = a.assign(&members, &configured, generation, generation - 1, now);
        assert_eq!(plan.delay_ms, 600, "the delay counts down");
        apply(&mut members, &plan);
        generation += 1;
        now += 600;
        let plan = a.assign(&members, &configured, generation, generation - 1, now);
        assert_eq!(plan.delay_ms, 0);
        apply(&mut members, &plan);
        check_exactly_once(&members, &configured);

        // With no delay, lost work moves in the same rebalance.
        let mut a = Assignor::new(0);
        let mut members: BTreeMap<String, Work> = (1..=3)
            .map(|i| (format!("w{i}"), Work::default()))
            .collect();
        settle(&mut a, &mut members, &configured, &mut generation, &mut now);
        members.remove("w1");
        let plan = a.assign(&members, &configured, generation, generation - 1, now);
        apply(&mut members, &plan);
        check_exactly_once(&members, &configured);
    }

    #[test]
    fn duplicated_and_deleted_work_is_revoked() {
        let mut a = Assignor::new(0);
        let mut configured = Work::default();
        connector(&mut configured, "a", 1);
        let mut both = Work::default();
        connector(&mut both, "a", 1);
        let members: BTreeMap<String, Work> =
            [("w1".to_string(), both.clone()), ("w2".to_string(), both)].into();
        let plan = a.assign(&members, &configured, 1, 0, 0);
        assert!(
            plan.members
                .values()
                .all(|p| p.revoked.connectors.contains("a"))
        );
        let units = configured.to_units();
        assert_eq!(units, vec![("a".to_string(), vec![-1, 0])]);
        assert_eq!(Work::from_units(&units), configured);
    }
}
