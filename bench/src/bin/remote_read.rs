//! Cold whole-tree read through `cairn mount` from S3 on loopback, with a
//! delaying TCP proxy adding latency to every request: default settings
//! against prefetching off, and the bytes fetched from S3 against the bytes
//! the reader read.
//!
//! Needs root, /dev/fuse, `moto_server` (`pip install 'moto[server]'`) and the
//! `cairn` binary next to this one (build both with `--release`).
//!
//! Arguments: `--delay-ms N` (default 20), `--small N` small files (default
//! 600), `--large N` large files (default 6) of `--large-mib N` MiB (default 4).

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BUCKET: &str = "cairn-bench";

struct Args {
    delay: Duration,
    small: usize,
    large: usize,
    large_mib: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        delay: Duration::from_millis(20),
        small: 600,
        large: 6,
        large_mib: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: u64 = it
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .parse()
            .with_context(|| format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--delay-ms" => args.delay = Duration::from_millis(value),
            "--small" => args.small = value as usize,
            "--large" => args.large = value as usize,
            "--large-mib" => args.large_mib = value as usize,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for(cond: impl Fn() -> bool, what: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn is_mounted(mountpoint: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let want = mountpoint.to_string_lossy();
    text.lines()
        .any(|l| l.split_whitespace().nth(1) == Some(want.as_ref()))
}

/// Bytes the proxy forwarded from the server to the client.
#[derive(Default)]
struct ProxyCounters {
    from_server: AtomicU64,
    requests: AtomicU64,
}

/// Forwards `listen` to `target`, sleeping `delay` before passing on the
/// first bytes of each request (a client write after the server answered,
/// or the first write of a connection).
async fn run_proxy(
    listener: tokio::net::TcpListener,
    target: u16,
    delay: Duration,
    counters: Arc<ProxyCounters>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let counters = counters.clone();
        tokio::spawn(async move {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let new_request = Arc::new(AtomicBool::new(true));
            let upstream_flag = new_request.clone();
            let upstream_counters = counters.clone();
            let upstream = async move {
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if upstream_flag.swap(false, Ordering::SeqCst) {
                        upstream_counters.requests.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(delay).await;
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
            };
            let downstream = async move {
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    counters.from_server.fetch_add(n as u64, Ordering::Relaxed);
                    new_request.store(true, Ordering::SeqCst);
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = client_write.shutdown().await;
            };
            tokio::join!(upstream, downstream);
        });
    }
}

fn s3_url(port: u16) -> String {
    format!(
        "objectstore+s3://{BUCKET}/store?region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3A{port}&allow_http=true"
    )
}

fn cairn(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench");
    c
}

/// Reads every file under `root` once, in directory order; returns bytes read.
fn read_tree(root: &Path) -> anyhow::Result<u64> {
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let mut f = std::fs::File::open(e.path())?;
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
            }
        }
    }
    Ok(total)
}

struct Run {
    label: &'static str,
    seconds: f64,
    read: u64,
    fetched: u64,
    requests: u64,
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let bin = std::env::current_exe()?
        .parent()
        .context("locating the cairn binary")?
        .join("cairn");
    if !bin.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p cairn)",
            bin.display()
        );
    }
    let work = tempfile::Builder::new()
        .prefix("cairn-remote-bench")
        .tempdir()?;
    let tree = work.path().join("tree");
    let stats = cairn_bench::generate_tree(&tree, args.small, args.large, args.large_mib << 20)?;

    let s3_port = free_port()?;
    let _s3 = Killed(
        Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &s3_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting moto_server (pip install 'moto[server]')")?,
    );
    wait_for(
        || TcpStream::connect(("127.0.0.1", s3_port)).is_ok(),
        "the S3 server",
    )?;
    let created = Command::new("curl")
        .args(["-sf", "-X", "PUT"])
        .arg(format!("http://127.0.0.1:{s3_port}/{BUCKET}"))
        .stdout(Stdio::null())
        .status()?;
    if !created.success() {
        bail!("creating the bucket failed");
    }
    let out = cairn(&bin)
        .args(["--store", &s3_url(s3_port), "add"])
        .arg(&tree)
        .output()?;
    if !out.status.success() {
        bail!("cairn add: {}", String::from_utf8_lossy(&out.stderr));
    }
    let store_path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let base = store_path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();

    let runtime = tokio::runtime::Runtime::new()?;
    let proxy_port = free_port()?;
    let counters = Arc::new(ProxyCounters::default());
    let listener = runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", proxy_port)))?;
    runtime.spawn(run_proxy(listener, s3_port, args.delay, counters.clone()));

    let mut runs = Vec::new();
    for (label, extra) in [
        ("default settings", vec![]),
        ("prefetch off (--window 0)", vec!["--window", "0"]),
    ] {
        let mountpoint: PathBuf = work.path().join(format!("mnt-{}", runs.len()));
        std::fs::create_dir_all(&mountpoint)?;
        let mut command = cairn(&bin);
        command
            .args(["--store", &s3_url(proxy_port), "mount"])
            .arg(&mountpoint)
            .args(&extra)
            .stdout(Stdio::null());
        let mount = Killed(command.spawn()?);
        wait_for(|| is_mounted(&mountpoint), "the mount")?;
        // The mount's start-up (root listing, first connection) is not timed.
        std::fs::metadata(mountpoint.join(&base))?;
        counters.from_server.store(0, Ordering::SeqCst);
        counters.requests.store(0, Ordering::SeqCst);
        let start = Instant::now();
        let read = read_tree(&mountpoint.join(&base))?;
        let seconds = start.elapsed().as_secs_f64();
        runs.push(Run {
            label,
            seconds,
            read,
            fetched: counters.from_server.load(Ordering::SeqCst),
            requests: counters.requests.load(Ordering::SeqCst),
        });
        drop(mount);
        wait_for(|| !is_mounted(&mountpoint), "the unmount")?;
    }

    println!(
        "cold read of {} files, {:.1} MiB, through cairn mount from S3 (moto) on loopback, +{} ms per request",
        stats.files,
        stats.bytes as f64 / (1 << 20) as f64,
        args.delay.as_millis()
    );
    let baseline = runs.last().map(|r| r.seconds).unwrap_or(1.0);
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.label.to_string(),
                format!("{:.2}", r.seconds),
                format!("{:.1}", r.read as f64 / (1 << 20) as f64 / r.seconds),
                format!("{:.1}", r.read as f64 / (1 << 20) as f64),
                format!("{:.1}", r.fetched as f64 / (1 << 20) as f64),
                format!("{:.3}", r.fetched as f64 / r.read.max(1) as f64),
                r.requests.to_string(),
                format!("{:.2}x", baseline / r.seconds),
            ]
        })
        .collect();
    cairn_bench::print_table(
        &[
            "settings",
            "seconds",
            "MiB/s",
            "MiB read",
            "MiB from S3",
            "from S3 / read",
            "requests",
            "speed vs prefetch off",
        ],
        &rows,
    );
    Ok(())
}
