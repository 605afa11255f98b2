//! The tasks of one running pipeline, joined in one place with one error precedence.

use std::future::Future;

use augur_core::{Error, ErrorKind};
use tokio::task::JoinHandle;

/// The downstream stages of a pipeline (transform, sink, destination …), spawned in pipeline
/// order; the source runs on the caller's task through [`Stages::run_source`].
///
/// Shutdown runs in pipeline order: the source stops first and drops its sender, each stage
/// drains what it was given and ends when its input closes, so joining the stages after the
/// source returned waits for every accepted change to be written (or failed).
///
/// The error reported is the most downstream one: a sink that fails stops the transform, which
/// stops the source, and only the sink's error explains the others.
#[derive(Debug, Default)]
pub struct Stages {
    /// Upstream first.
    tasks: Vec<(&'static str, JoinHandle<Result<(), Error>>)>,
}

impl Stages {
    /// No stages yet.
    pub fn new() -> Stages {
        Stages::default()
    }

    /// Spawns the next stage downstream.
    pub fn spawn(
        &mut self,
        name: &'static str,
        stage: impl Future<Output = Result<(), Error>> + Send + 'static,
    ) {
        self.tasks.push((name, tokio::spawn(stage)));
    }

    /// Runs the source to its end, then joins every stage; the most downstream error wins.
    pub async fn run_source<T>(
        self,
        source: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let source_result = source.await;
        let mut downstream: Option<Error> = None;
        for (name, task) in self.tasks {
            if let Err(e) = joined(task, name).await {
                downstream = Some(e);
            }
        }
        match downstream {
            Some(e) => Err(e),
            None => source_result,
        }
    }
}

/// A stage task's result; a panic is an internal error naming the stage.
async fn joined(task: JoinHandle<Result<(), Error>>, stage: &str) -> Result<(), Error> {
    task.await.unwrap_or_else(|e| {
        Err(Error::new(ErrorKind::Internal, format!("the {stage} task failed")).with_source(e))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn failing(kind: ErrorKind, msg: &'static str) -> std::future::Ready<Result<(), Error>> {
        std::future::ready(Err(Error::new(kind, msg)))
    }

    #[tokio::test]
    async fn the_most_downstream_error_explains_the_others() {
        let mut s = Stages::new();
        s.spawn("transform", failing(ErrorKind::Internal, "transform"));
        s.spawn("sink", failing(ErrorKind::Destination, "sink"));
        let e = s
            .run_source(async { Err::<(), _>(Error::new(ErrorKind::Destination, "source")) })
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "sink");
    }

    #[tokio::test]
    async fn a_source_error_stands_when_the_stages_drained() {
        let mut s = Stages::new();
        s.spawn("sink", async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        });
        let e = s
            .run_source(async { Err::<u8, _>(Error::new(ErrorKind::Config, "source")) })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let mut s = Stages::new();
        s.spawn("sink", async { Ok(()) });
        assert_eq!(s.run_source(async { Ok::<u8, Error>(7) }).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_panicking_stage_is_an_internal_error_naming_it() {
        let mut s = Stages::new();
        s.spawn("sink", async { panic!("boom") });
        let e = s
            .run_source(async { Ok::<(), Error>(()) })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.to_string().contains("sink task"), "{e}");
    }
}
