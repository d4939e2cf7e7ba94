// placeholder: wired by the lead once modules land
export {};
