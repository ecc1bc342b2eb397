"""Settings of a generated jet sample (stored as JSON in the HDF5 file's attributes).

The defaults follow seeds/000 s.3.1 and issue 7: CMS ``QCD_Pt_300to470_13TeV_pythia8``
(Pythia 8 hard QCD, pT-hat 300-470 GeV, 13 TeV), anti-kT R = 0.4 ("AK4") jets of 300-470 GeV
with |eta| < 2, 32x32 images over (d_eta, d_phi) in [-0.5, 0.5]^2 around the jet axis.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from cnnlab.configbase import Section


class JetSettings(Section):
    """Everything that determines the content of a jets file, apart from the seed."""

    ecm: float = Field(13000.0, gt=0, description="proton-proton centre-of-mass energy (GeV)")
    pthat_min: float = Field(300.0, ge=0, description="lower edge of the hard-process pT-hat window (GeV)")
    pthat_max: float = Field(470.0, gt=0, description="upper edge of the pT-hat window (GeV)")
    jet_pt_min: float = Field(300.0, ge=0, description="keep jets with pT above this (GeV)")
    jet_pt_max: float = Field(470.0, gt=0, description="keep jets with pT below this (GeV)")
    eta_max: float = Field(2.0, gt=0, description="keep jets with |eta| below this")
    radius: float = Field(0.4, gt=0, le=1.5, description="anti-kT distance parameter R")
    match_dr: float = Field(0.4, gt=0, description="parton-jet matching: max Delta R to a hard-process outgoing parton")
    pixels: int = Field(32, ge=4, le=256, description="image size in pixels per side")
    extent: float = Field(0.5, gt=0, description="the image covers d_eta, d_phi in [-extent, extent]")
    channels: str = Field("seed", description="image channels: seed (sum E, sum charge, sum |charge|) "
                                              "or komiske (charged pT, neutral pT, charged multiplicity)")
    block_events: int = Field(200, ge=1, description="events per block: the unit of seeding, "
                                                     "parallel work and resume")
    tau0_max_mm: float = Field(10.0, gt=0, description="hadrons with c*tau0 above this (mm) are stable "
                                                      "(K0S, Lambda: the LHC generator-level convention)")
    pythia: list[str] = Field(default_factory=list, description="extra Pythia settings lines, "
                                                              "e.g. 'PartonLevel:MPI = off'")

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: str) -> str:
        from cnnlab.physics.images import CHANNELS

        return CHANNELS.validate(value)

    @model_validator(mode="after")
    def _ordered_windows(self) -> "JetSettings":
        if self.pthat_max <= self.pthat_min:
            raise ValueError(f"pthat_max={self.pthat_max} must exceed pthat_min={self.pthat_min}")
        if self.jet_pt_max <= self.jet_pt_min:
            raise ValueError(f"jet_pt_max={self.jet_pt_max} must exceed jet_pt_min={self.jet_pt_min}")
        return self

    def pythia_lines(self) -> list[str]:
        """The Pythia 8 settings (seeding is set separately per block)."""
        return [
            f"Beams:eCM = {self.ecm}",
            "HardQCD:all = on",
            f"PhaseSpace:pTHatMin = {self.pthat_min}",
            f"PhaseSpace:pTHatMax = {self.pthat_max}",
            # Long-lived hadrons stay undecayed, as at generator level in CMS/ATLAS.
            "ParticleDecays:limitTau0 = on",
            f"ParticleDecays:tau0Max = {self.tau0_max_mm}",
            # Quiet: no event counter, listings or init summaries (they cost time and clutter logs).
            "Print:quiet = on",
            "Next:numberCount = 0",
            "Next:numberShowEvent = 0",
            "Next:numberShowProcess = 0",
            "Next:numberShowInfo = 0",
            "Random:setSeed = on",
            *self.pythia,
        ]
