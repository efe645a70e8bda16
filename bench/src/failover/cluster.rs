//! The instances under test: `neuronx serve` children started, killed and restarted, the load
//! that keeps timers coming due on every shard, and the Redis they share.

use super::*;

/// A child process killed (SIGKILL) when dropped.
pub(super) struct Proc(pub(super) Option<Child>);

impl Proc {
    pub(super) fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Bench {
    pub(super) fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(
            self.dir
                .path()
                .join(format!("{}.log", self.instances[i].id)),
        )?;
        let inst = &mut self.instances[i];
        let child = Command::new(&self.exe)
            .arg("--config")
            .arg(self.dir.path().join("bench.toml"))
            .arg("serve")
            .env("NEURONX_DATABASE_URL", &self.db_url)
            .env("NEURONX_LISTEN", format!("127.0.0.1:{}", inst.port))
            .env("NEURONX_PUBLIC_URL", &inst.base)
            .env("NEURONX_INSTANCE_ID", &inst.id)
            .env("NEURONX_REDIS_URL", &self.redis_url)
            .env("NEURONX_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting an instance")?;
        inst.proc = Proc(Some(child));
        Ok(())
    }

    pub(super) async fn wait_up(&self, i: usize) -> anyhow::Result<()> {
        let url = format!("{}/healthz", self.instances[i].base);
        let what = format!(
            "{} to start (logs in {})",
            self.instances[i].id,
            self.dir.path().display()
        );
        poll(Duration::from_secs(30), 25, &what, || async {
            let r = self.http.get(&url).send().await;
            Ok(r.ok().filter(|r| r.status().is_success()).map(|_| ()))
        })
        .await
    }

    /// Shard → owner of a live lease.
    pub(super) async fn owners(&self) -> anyhow::Result<Vec<(i32, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT id, CASE WHEN lease_until > (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                        THEN owner END
             FROM shards ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Waits until every instance holds its fair share; false if `within` ran out.
    pub(super) async fn wait_balanced(&self, within: Duration) -> anyhow::Result<bool> {
        let n = self.instances.len();
        let (lo, hi) = (
            self.shard_count as usize / n,
            (self.shard_count as usize).div_ceil(n),
        );
        let fair = poll(within, 50, "balance", || async {
            let owners = self.owners().await?;
            let held = |id: &str| {
                owners
                    .iter()
                    .filter(|(_, o)| o.as_deref() == Some(id))
                    .count()
            };
            let all_owned = owners.iter().all(|(_, o)| o.is_some());
            let fair = self
                .instances
                .iter()
                .all(|i| (lo..=hi).contains(&held(&i.id)));
            Ok((all_owned && fair).then_some(()))
        });
        Ok(fair.await.is_ok())
    }
}

pub(super) fn lead(n: u64, sla_seconds: u64) -> Value {
    let place = crate::places::daytime();
    json!({
        "external_id": format!("failover-{n}"),
        "playbook": "speed-to-lead",
        "contact": {
            "name": format!("Lead {n}"),
            "phone": place.phone(n),
            "timezone": place.zone,
            "consent": {"voice": false, "sms": false}
        },
        "sla": {"first_touch_seconds": sla_seconds}
    })
}

/// Creates `rate` leads a second (round-robin over `bases`, skipping an instance that is down)
/// until `stop`; counts accepted creates and failures.
pub(super) fn spawn_load(
    b: &Bench,
    rate: u32,
    sla: u64,
    stop: Arc<AtomicBool>,
    counts: Arc<[AtomicU64; 2]>,
) -> tokio::task::JoinHandle<()> {
    let (http, key) = (b.http.clone(), b.key.clone());
    let bases: Arc<Vec<String>> = Arc::new(b.instances.iter().map(|i| i.base.clone()).collect());
    tokio::spawn(async move {
        let permits = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (http, key, bases, counts) =
                (http.clone(), key.clone(), bases.clone(), counts.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let body = lead(n, sla);
                let mut ok = false;
                for i in 0..bases.len() {
                    let base = &bases[(n as usize + i) % bases.len()];
                    let url = format!("{base}/v1/opportunities");
                    match http.post(url).bearer_auth(&key).json(&body).send().await {
                        Ok(r) => {
                            ok = r.status().is_success();
                            break;
                        }
                        Err(_) => continue,
                    }
                }
                counts[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
            });
            n += 1;
        }
    })
}

pub(super) async fn wait_redis(port: u16) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    poll(
        Duration::from_secs(10),
        25,
        "redis-server to answer PING",
        || async move {
            let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                return Ok(None);
            };
            let mut buf = [0u8; 7];
            let ok = s.write_all(b"PING\r\n").await.is_ok() && s.read_exact(&mut buf).await.is_ok();
            Ok((ok && &buf == b"+PONG\r\n").then_some(()))
        },
    )
    .await
}
