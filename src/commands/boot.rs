//! `cairn boot --closure STORE_PATH -- CMD...`: boots a microVM whose
//! `/nix/store` is the closure served over virtio-fs, runs CMD in it,
//! streams its output and exits with its status.
//!
//! The initrd (busybox, the virtio-fs modules, init) is built for the
//! kernel given; the virtio-fs daemon runs in this process; the VMM's
//! serial console is read back for the output and the exit status.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use cairn_boot::console::{ConsoleReader, Outcome};
use cairn_boot::vmm::shell_line;
use cairn_boot::{Compression, GuestSpec, InitrdSpec, Kernel, Vmm};
use cairn_virtiofs::DaemonOptions;

use crate::commands::virtiofs::{
    FsArgs, finish_copies, fs_factory, root_source, serve_in_background,
};
use crate::store_location::StoreLocation;

#[derive(Clone, Copy, clap::ValueEnum)]
enum VmmKind {
    Qemu,
    CloudHypervisor,
}

#[derive(clap::Args)]
pub struct BootArgs {
    /// The store path whose closure becomes the guest's /nix/store (repeatable).
    #[arg(long = "closure", value_name = "STORE_PATH", required = true)]
    closures: Vec<String>,
    /// The kernel: an unpacked kernel package (`dpkg-deb -x`), its boot/
    /// directory, or an image file (modules at ../lib/modules/VERSION).
    #[arg(long, env = "CAIRN_KERNEL", value_name = "DIR_OR_FILE")]
    kernel: PathBuf,
    /// The VMM to run.
    #[arg(long, value_enum, default_value = "qemu")]
    vmm: VmmKind,
    /// Print the commands (virtio-fs daemon and VMM) instead of running them;
    /// the initrd is kept in --state-dir.
    #[arg(long)]
    print_command: bool,
    /// Where the initrd and the socket go [default: a temporary directory,
    /// removed afterwards unless --print-command].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// A statically linked busybox for the initrd.
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512)]
    memory_mib: u64,
    /// Guest CPUs.
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// QEMU accelerator (tcg works everywhere; kvm where it works).
    #[arg(long, default_value = "tcg")]
    accel: String,
    /// Request queues of the virtio-fs device.
    #[arg(long, default_value_t = 1)]
    request_queues: usize,
    /// The virtio-fs tag the guest mounts.
    #[arg(long, default_value = "nixstore")]
    tag: String,
    /// Stop the VM after this many seconds (exit status 124).
    #[arg(long)]
    timeout_secs: Option<u64>,
    #[command(flatten)]
    fs: FsArgs,
    /// The command to run in the guest (through its shell, with PATH=/bin
    /// holding busybox).
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

const QUEUE_SIZE: u16 = 1024;

/// Removes a directory this command created, when dropped.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:016x}",
        (nanos as u64) ^ (u64::from(std::process::id()) << 40)
    )
}

fn state_dir(args: &BootArgs) -> anyhow::Result<(PathBuf, TempDir)> {
    if let Some(dir) = &args.state_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        return Ok((dir.clone(), TempDir(None)));
    }
    let dir = std::env::temp_dir().join(format!("cairn-boot-{}", nonce()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let guard = TempDir((!args.print_command).then(|| dir.clone()));
    Ok((dir, guard))
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

fn program_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

pub async fn run(location: &StoreLocation, args: BootArgs) -> anyhow::Result<ExitCode> {
    let store = location.open_store()?;
    let roots = root_source(&store, &args.closures).await?;
    let kernel = Kernel::locate(&args.kernel)
        .with_context(|| format!("finding the kernel in {}", args.kernel.display()))?;
    let (dir, _cleanup) = state_dir(&args)?;
    let initrd_path = dir.join("initrd.cpio.zst");
    let socket = dir.join("virtiofs.sock");
    let initrd = cairn_boot::build_initrd(&InitrdSpec {
        busybox: args.busybox.clone(),
        kernel: kernel.clone(),
        modules: cairn_boot::modules::VIRTIO_FS_PCI
            .iter()
            .map(|m| m.to_string())
            .collect(),
        compression: Compression::Zstd,
    })
    .context("building the initrd")?;
    std::fs::write(&initrd_path, &initrd)
        .with_context(|| format!("writing {}", initrd_path.display()))?;

    let vmm = match args.vmm {
        VmmKind::Qemu => Vmm::Qemu,
        VmmKind::CloudHypervisor => Vmm::CloudHypervisor,
    };
    let nonce = nonce();
    let command_line =
        cairn_boot::init::kernel_command_line(vmm.console(), &args.tag, &nonce, &args.command)?;
    let spec = GuestSpec {
        kernel: kernel.image.clone(),
        initrd: initrd_path.clone(),
        command_line,
        memory_mib: args.memory_mib,
        cpus: args.cpus,
        socket: socket.clone(),
        tag: args.tag.clone(),
        request_queues: args.request_queues,
        queue_size: QUEUE_SIZE,
        accel: args.accel.clone(),
    };
    let vmm_args = vmm.arguments(&spec);

    if args.print_command {
        let exe = std::env::current_exe().context("finding the cairn binary")?;
        let mut daemon: Vec<std::ffi::OsString> = vec![
            "--store-dir".into(),
            location.dir.clone().into(),
            "virtiofs".into(),
            "--socket".into(),
            socket.clone().into(),
            "--request-queues".into(),
            args.request_queues.to_string().into(),
        ];
        for closure in &args.closures {
            daemon.push("--closure".into());
            daemon.push(closure.into());
        }
        println!("{} &", shell_line(&exe.to_string_lossy(), &daemon));
        println!("{}", shell_line(vmm.program(), &vmm_args));
        return Ok(ExitCode::SUCCESS);
    }

    if vmm == Vmm::CloudHypervisor && !(program_exists(vmm.program()) && kvm_usable()) {
        bail!(
            "cloud-hypervisor needs its binary on PATH and a usable /dev/kvm; \
             --print-command shows the command line"
        );
    }

    let whole_files = args.fs.whole_files.open(location)?;
    let options = DaemonOptions {
        request_queues: args.request_queues,
        queue_size: QUEUE_SIZE,
        keep_serving: false,
        whole_files: whole_files.clone(),
        ..DaemonOptions::default()
    };
    let listening = cairn_virtiofs::listen(&socket, options)?;
    let daemon = serve_in_background(listening, fs_factory(&store, roots, args.fs.options()))?;

    let started = Instant::now();
    let mut child = std::process::Command::new(vmm.program())
        .args(&vmm_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", vmm.program()))?;
    let console = child.stdout.take().context("the VMM has no stdout")?;
    let reader = ConsoleReader::new(&nonce);
    let mut follow = tokio::task::spawn_blocking(move || {
        let mut boot_log = Vec::new();
        let mut stdout = std::io::stdout().lock();
        let outcome = reader.follow(BufReader::new(console), &mut stdout, &mut boot_log);
        (outcome, boot_log)
    });
    let limit = args.timeout_secs.map(Duration::from_secs);
    let followed = match limit {
        Some(limit) => tokio::time::timeout(limit, &mut follow).await.ok(),
        None => Some((&mut follow).await),
    };
    let Some(followed) = followed else {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!(
            "error: the guest did not finish within {} s",
            limit.unwrap_or_default().as_secs()
        );
        return Ok(ExitCode::from(124));
    };
    let (outcome, boot_log) = followed.context("reading the console")?;
    let outcome = outcome.context("reading the console")?;
    let vmm_status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .context("waiting for the VMM")?
        .context("waiting for the VMM")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        ?outcome,
        "guest finished"
    );
    match tokio::time::timeout(Duration::from_secs(10), daemon).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the virtio-fs daemon failed"),
        Ok(_) => {}
        Err(_) => tracing::warn!("the virtio-fs daemon did not stop after the VMM exited"),
    }
    finish_copies(whole_files.as_deref()).await;
    match outcome {
        Outcome::Exited(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(255))),
        Outcome::InitFailed(what) => bail!("the guest's init failed: {what}"),
        Outcome::NoStatus => bail!(
            "the VM ({vmm_status}) ended without reporting the command's status; its console:\n{}",
            tail(&boot_log, 30)
        ),
    }
}

/// The last `lines` lines of a console log.
fn tail(log: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(log);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
