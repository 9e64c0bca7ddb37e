//! CPU time from Linux's `/proc`, in clock ticks (USER_HZ, 100 a second): a process's own and
//! its waited-for children's, and the whole machine's busy and total time. Missing or
//! unreadable files read as zero (the load tools report, they do not fail, on other systems).

/// Clock ticks per second in `/proc` (USER_HZ, 100 on Linux).
pub const TICKS_PER_SEC: u64 = 100;

/// One process's counters from a `/proc/PID/stat` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessTicks {
    /// The parent's pid.
    pub ppid: u32,
    /// User + system time of the process itself.
    pub own: u64,
    /// User + system time of its children it waited for.
    pub children: u64,
}

/// Parses a `/proc/PID/stat` line (the command name may hold spaces and parentheses).
pub fn parse_process(stat: &str) -> ProcessTicks {
    // After the parenthesised command name: state is field 3, ppid 4, utime 14, stime 15,
    // cutime 16, cstime 17.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    ProcessTicks {
        ppid: u32::try_from(field(4)).unwrap_or(0),
        own: field(14) + field(15),
        children: field(16) + field(17),
    }
}

/// This process's counters.
pub fn this_process() -> ProcessTicks {
    parse_process(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// Every process's counters, by pid.
pub fn all_processes() -> Vec<(u32, ProcessTicks)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            Some((pid, parse_process(&stat)))
        })
        .collect()
}

/// The whole machine: busy and total ticks over all CPUs since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// Ticks not idle and not waiting for I/O.
    pub busy: u64,
    /// All ticks (user, nice, system, idle, iowait, irq, softirq, steal).
    pub total: u64,
}

/// Parses `/proc/stat`'s first line.
pub fn parse_machine(stat: &str) -> MachineTicks {
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let total: u64 = cpu.iter().take(8).sum();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    MachineTicks {
        busy: total.saturating_sub(idle),
        total,
    }
}

/// The machine's counters now.
pub fn machine() -> MachineTicks {
    parse_machine(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_process_line_whose_name_has_spaces_and_parentheses() {
        let line = "42 (a (b) c) S 7 1 1 0 -1 0 0 0 0 0 11 13 17 19 20 0 1 0";
        assert_eq!(
            parse_process(line),
            ProcessTicks {
                ppid: 7,
                own: 24,
                children: 36
            }
        );
        assert_eq!(parse_process(""), ProcessTicks::default());
    }

    #[test]
    fn reads_the_machine_line() {
        let stat = "cpu  10 1 5 100 4 1 1 0 0 0\ncpu0 1 1 1 1 1 1 1 0 0 0\n";
        assert_eq!(parse_machine(stat), MachineTicks { busy: 18, total: 122 });
    }
}
