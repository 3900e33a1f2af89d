//! Who listens on a loopback port. A process given a port that was free a moment ago can lose
//! it to another process before it binds; an answer on that port then comes from the other
//! process. The benchmark's children and the tests' child processes are taken as started
//! only once they hold their port themselves. Linux only (`/proc`), as is every place that
//! starts such children. Self-contained, so that the tests' harness includes this very file.

/// True when process `pid` holds the socket listening on 127.0.0.1:`port`: the socket's inode,
/// from `/proc/net/tcp`, is one of the process's open files (`/proc/<pid>/fd`).
pub fn holds_listener(pid: u32, port: u16) -> bool {
    let Some(inode) = listener_inode(port) else {
        return false;
    };
    let wanted = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str())
    })
}

/// The inode of the socket listening on 127.0.0.1:`port`, from `/proc/net/tcp` (addresses
/// in hex, the IPv4 one in host byte order; state `0A` is LISTEN).
fn listener_inode(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, addr, _, "0A", _, _, _, _, _, inode, ..] if *addr == local => {
                Some((*inode).to_string())
            }
            _ => None,
        }
    })
}
