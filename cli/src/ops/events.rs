//! `sluice events list|show`: the admin API's event log.

use http::Method;

use super::{Ctx, seg, with_query};
use crate::args::EventCmd;
use crate::error::CliError;
use crate::render;

pub async fn run(ctx: &Ctx, cmd: EventCmd) -> Result<(), CliError> {
    match cmd {
        EventCmd::List(f) => {
            let path = with_query(
                "/admin/events",
                &[
                    ("source", f.source),
                    ("type", f.event_type),
                    ("status", f.status),
                    ("since", f.since),
                    ("until", f.until),
                    ("limit", f.limit.map(|l| l.to_string())),
                    ("cursor", f.cursor),
                ],
            );
            let v = ctx.call(Method::GET, &path, None).await?;
            ctx.print(&v, render::events);
        }
        EventCmd::Show { id } => {
            let v = ctx
                .call(Method::GET, &format!("/admin/events/{}", seg(&id)), None)
                .await?;
            ctx.print(&v, render::event);
        }
    }
    Ok(())
}
